"""Model changes reach every replica: announced on Redis pub/sub when configured, found by polling always.

The database is the truth: an announcement only says "look now". Polling reads one row (the models
revision) every few seconds, so a replica that missed an announcement — or runs without Redis —
still catches up. Redis being away never fails anything; it only makes polling the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from proxyllm.db.url import redact
from proxyllm.ops.model_store import ModelStore

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("proxyllm.models")
RECONNECT_MAX = 30.0
READ_TIMEOUT = 1.0  # seconds a pub/sub read waits; also how soon the listener sees that it must stop
STOP_WAIT = 3.0  # seconds stop() waits for its tasks before leaving them behind


class ModelSync:
    def __init__(self, store: ModelStore, *, interval: float, redis_url: str | None, channel: str) -> None:
        self.store = store
        self.interval = interval
        self.redis_url = redis_url
        self.channel = channel
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: aioredis.Redis | None = None  # once started with Redis
        self._publish_failed = False
        self._stopping = False
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._stopping = False
        self._tasks.append(asyncio.create_task(self._poll_forever()))
        if self.redis_url:
            import redis.asyncio as aioredis  # the Redis client loads only when Redis is configured
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._publisher = aioredis.Redis.from_url(
                self.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
            )
            self._tasks.append(asyncio.create_task(self._listen_forever()))

    async def stop(self) -> None:
        """Bounded: redis-py's reads may swallow a cancellation that races their own timeout, so the
        loops also stop on ``_stopping`` and this never waits more than ``STOP_WAIT`` seconds."""
        self._stopping = True
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_WAIT)
            if pending:
                log.warning("model sync did not stop within %gs; leaving it behind", STOP_WAIT)
        self._tasks.clear()
        if self._publisher is not None:
            from redis.exceptions import RedisError

            with contextlib.suppress(RedisError, OSError):
                await self._publisher.aclose()
            self._publisher = None

    async def announce(self, revision: int) -> None:
        """Tell the other replicas to reload now (best effort: polling covers a lost message)."""
        if self._publisher is None:
            return
        from redis.exceptions import RedisError

        try:
            await self._publisher.publish(self.channel, str(revision))
        except (RedisError, OSError) as exc:
            if not self._publish_failed:
                log.warning(
                    "cannot announce a model change on %s (%s); other replicas find it by polling within %gs",
                    redact(self.redis_url or ""),
                    type(exc).__name__,
                    self.interval,
                )
            self._publish_failed = True
        else:
            self._publish_failed = False

    async def _refresh(self, why: str) -> None:
        try:
            await self.store.refresh()
        except Exception as exc:
            log.warning("reloading models (%s) failed: %s", why, type(exc).__name__)

    async def _poll_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            await self._refresh("poll")

    async def _listen_forever(self) -> None:
        assert self.redis_url is not None
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        delay = 1.0
        while not self._stopping:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=5.0, health_check_interval=30)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                delay = 1.0
                await self._refresh("subscribed")  # whatever changed while not listening
                while not self._stopping:
                    message = await pubsub.get_message(timeout=READ_TIMEOUT)
                    _raise_if_cancelled()
                    if message is not None and message.get("type") == "message":
                        await self._refresh("announced")
            except (RedisError, OSError) as exc:
                if self.subscribed.is_set() or delay == 1.0:
                    log.warning(
                        "model change announcements from %s unavailable (%s); polling every %gs meanwhile",
                        redact(self.redis_url),
                        type(exc).__name__,
                        self.interval,
                    )
                self.subscribed.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)


def _raise_if_cancelled() -> None:
    """A cancellation a library call swallowed is still pending on the task: honour it now."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
