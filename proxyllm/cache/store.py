"""Where cached responses live: this process's memory (LRU, with expiry), or Redis (``redis_store.py``)."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import OrderedDict

from proxyllm.core import clock

log = logging.getLogger("proxyllm.cache")


class CacheStore(ABC):
    name: str

    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def close(self) -> None:
        return None

    def describe(self) -> str:
        return self.name


class LocalStore(CacheStore):
    name = "local"

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= clock.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        entries = self._entries
        entries[key] = (clock.monotonic() + ttl, value)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
