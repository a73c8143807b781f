"""The response cache in Redis, shared by every replica (imported only when the cache is on Redis).

A Redis that is away turns lookups into misses and stores into no-ops (one warning, then Redis is
left alone for a few seconds at a time), so the cache can never fail a request.
"""

from __future__ import annotations

import contextlib
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from proxyllm.cache.store import CacheStore
from proxyllm.state.redis import redacted

log = logging.getLogger("proxyllm.cache")


class RedisStore(CacheStore):
    name = "redis"

    def __init__(self, url: str, *, timeout: float = 0.5, retry_interval: float = 5.0) -> None:
        self.url = url
        self.retry_interval = retry_interval
        self._client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._down_until = 0.0
        self._warned = False

    def describe(self) -> str:
        return f"redis {redacted(self.url)}"

    def _available(self) -> bool:
        return not self._down_until or time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_interval
        if not self._warned:
            self._warned = True
            log.warning(
                "response cache %s is unavailable (%s): serving without it", self.describe(), type(exc).__name__
            )

    def _ok(self) -> None:
        if self._down_until:
            self._down_until = 0.0
            if self._warned:
                self._warned = False
                log.warning("response cache %s is reachable again", self.describe())

    async def get(self, key: str) -> bytes | None:
        if not self._available():
            return None
        try:
            value = await self._client.get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._ok()
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if not self._available():
            return
        try:
            await self._client.set(key, value, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._ok()

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
