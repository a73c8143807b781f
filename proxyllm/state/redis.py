"""Shared state in Redis: counters and marks changed by Lua scripts (atomic), marks announced by pub/sub.

Redis being away must never fail a request. Every operation that cannot reach Redis is answered by an
in-process ``MemoryState`` instead; the first such failure logs one warning, a background task pings
until Redis answers again, logs that it is back and calls the ``on_recover`` callbacks (callers reload
what they may have missed). Only connection and timeout errors count as an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from proxyllm.core.memory_state import MemoryState
from proxyllm.core.shared_state import MarkEvent, SharedState

log = logging.getLogger("proxyllm.state")
T = TypeVar("T")
OUTAGE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)

# KEYS: counters; ARGV[1]: ttl in ms, ARGV[1 + i]: delta for KEYS[i] (0 reads). Returns the values.
INCR_MANY = """
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local delta = tonumber(ARGV[i + 1])
  if delta == 0 then
    out[i] = tonumber(redis.call('GET', key) or '0')
  else
    out[i] = redis.call('INCRBY', key, delta)
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ttl) end
  end
end
return out
"""

# KEYS[1]: the group's hash, KEYS[2]: its channel; ARGV: member, ms, value. Deadlines use Redis's clock.
MARK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], (now + ms) .. '|' .. ARGV[3])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
redis.call('PUBLISH', KEYS[2], ARGV[1] .. '|' .. ms .. '|' .. ARGV[3])
return 1
"""

UNMARK = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[2], ARGV[1] .. '|0|')
return 1
"""

# Live marks as a flat list member, ms left, value; expired ones are removed on the way.
MARKS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local raw = all[i + 1]
  local sep = string.find(raw, '|', 1, true)
  local deadline = tonumber(string.sub(raw, 1, sep - 1))
  if deadline <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    table.insert(out, all[i])
    table.insert(out, tostring(deadline - now))
    table.insert(out, string.sub(raw, sep + 1))
  end
end
return out
"""


def redacted(url: str) -> str:
    """host:port/db of a Redis URL, never its password."""
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"


class RedisState(SharedState):
    name = "redis"
    distributed = True

    def __init__(
        self, url: str, *, namespace: str = "proxyllm", timeout: float = 1.0, retry_interval: float = 2.0
    ) -> None:
        super().__init__()
        self.url = url
        self.namespace = namespace
        self.retry_interval = retry_interval
        self._client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._incr_many = self._client.register_script(INCR_MANY)
        self._mark = self._client.register_script(MARK)
        self._unmark = self._client.register_script(UNMARK)
        self._marks = self._client.register_script(MARKS)
        self._local = MemoryState()
        self._started = False
        self._closing = False
        self._down = False
        self._up = asyncio.Event()
        self._recovery: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._script_error_logged = False

    @property
    def shared(self) -> bool:
        return self._started and not self._down

    def describe(self) -> str:
        return f"redis {redacted(self.url)}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        try:
            await self._client.ping()
        except OUTAGE as exc:
            self._went_down(exc)
        else:
            self._up.set()
            log.info("shared state in %s", self.describe())
        if self._subscribers:
            self._listener = asyncio.create_task(self._listen())

    async def close(self) -> None:
        self._closing = True
        tasks = {t for t in (self._listener, self._recovery) if t is not None and not t.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            # redis-py's reads may swallow a cancellation that races their own timeout: the loops
            # also stop on _closing, within their one-second read timeout.
            await asyncio.wait(tasks, timeout=2.0)
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    def _went_down(self, exc: BaseException) -> None:
        if self._down:
            return
        self._down = True
        self._up.clear()
        log.warning(
            "%s is unreachable (%s); cooldowns and usage counters are per-process until it is back",
            self.describe(),
            type(exc).__name__,
        )
        if self._started and (self._recovery is None or self._recovery.done()):
            self._recovery = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.retry_interval)
            try:
                await self._client.ping()
            except OUTAGE:
                continue
            except RedisError:
                continue
            self._down = False
            self._up.set()
            log.warning("%s is reachable again; state is shared across replicas again", self.describe())
            for callback in self._on_recover:
                try:
                    callback()
                except Exception:
                    log.exception("a Redis recovery callback failed")
            return

    async def _listen(self) -> None:
        channels = {self._channel(group): group for group in self._subscribers}
        while not self._closing:
            await self._up.wait()
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                while not self._closing:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(channels.get(message["channel"]), message["data"])
            except OUTAGE as exc:
                self._went_down(exc)
            except RedisError:
                log.exception("Redis subscription failed; resubscribing")
                await asyncio.sleep(self.retry_interval)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _on_message(self, group: str | None, data: str) -> None:
        member, _, rest = data.partition("|")
        ms, _, value = rest.partition("|")
        if group is None or not member or not ms.isdigit():
            return
        self._deliver(MarkEvent(group, member, int(ms) / 1000, value))

    # -- operations --------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self.namespace}:c:{key}"

    def _hash(self, group: str) -> str:
        return f"{self.namespace}:m:{group}"

    def _channel(self, group: str) -> str:
        return f"{self.namespace}:e:{group}"

    async def _op(self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        if not self._down:
            try:
                return await remote()
            except OUTAGE as exc:
                self._went_down(exc)
            except RedisError:
                if not self._script_error_logged:
                    self._script_error_logged = True
                    log.exception("Redis refused an operation; answering from per-process state")
        return await local()

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        values = await self.incr_many({key: amount}, ttl)
        return values[key]

    async def incr_many(self, deltas: Mapping[str, int], ttl: float) -> dict[str, int]:
        if not deltas:
            return {}
        keys = list(deltas)

        async def remote() -> dict[str, int]:
            values: list[int] = await self._incr_many(
                keys=[self._key(k) for k in keys], args=[int(ttl * 1000), *(deltas[k] for k in keys)]
            )
            return {k: int(v) for k, v in zip(keys, values, strict=True)}

        return await self._op(remote, lambda: self._local.incr_many(deltas, ttl))

    async def delete(self, key: str) -> None:
        async def remote() -> None:
            await self._client.delete(self._key(key))

        await self._op(remote, lambda: self._local.delete(key))

    async def mark(self, group: str, member: str, seconds: float, value: str) -> None:
        async def remote() -> None:
            await self._mark(
                keys=[self._hash(group), self._channel(group)], args=[member, max(1, int(seconds * 1000)), value]
            )

        async def local() -> None:
            await self._local.mark(group, member, seconds, value)
            self._deliver(MarkEvent(group, member, seconds, value))

        await self._op(remote, local)

    async def unmark(self, group: str, member: str) -> None:
        async def remote() -> None:
            await self._unmark(keys=[self._hash(group), self._channel(group)], args=[member])

        async def local() -> None:
            await self._local.unmark(group, member)
            self._deliver(MarkEvent(group, member, 0.0, ""))

        await self._op(remote, local)

    async def marks(self, group: str) -> dict[str, tuple[float, str]]:
        async def remote() -> dict[str, tuple[float, str]]:
            flat: list[str] = await self._marks(keys=[self._hash(group)], args=[])
            return {flat[i]: (int(flat[i + 1]) / 1000, flat[i + 2]) for i in range(0, len(flat), 3)}

        return await self._op(remote, lambda: self._local.marks(group))
