"""Shared state for one process: dictionaries with expiry times (monotonic clock)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from proxyllm.core.shared_state import MarkEvent, SharedState

# Expired counters are dropped in passing; a full sweep runs once this many keys exist.
SWEEP_AT = 10_000


class MemoryState(SharedState):
    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._counters: dict[str, tuple[int, float]] = {}
        self._marks: dict[str, dict[str, tuple[float, str]]] = {}

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        return self._incr(key, amount, ttl, time.monotonic())

    async def incr_many(self, deltas: Mapping[str, int], ttl: float) -> dict[str, int]:
        now = time.monotonic()
        return {key: self._incr(key, amount, ttl, now) for key, amount in deltas.items()}

    def _incr(self, key: str, amount: int, ttl: float, now: float) -> int:
        value, expires = self._counters.get(key, (0, 0.0))
        if expires <= now:
            value, expires = 0, now + ttl
            if not amount:
                return 0
            if len(self._counters) >= SWEEP_AT:
                self._sweep(now)
        value += amount
        self._counters[key] = (value, expires)
        return value

    def _sweep(self, now: float) -> None:
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}

    async def delete(self, key: str) -> None:
        self._counters.pop(key, None)

    async def mark(self, group: str, member: str, seconds: float, value: str) -> None:
        self._marks.setdefault(group, {})[member] = (time.monotonic() + seconds, value)
        self._deliver(MarkEvent(group, member, seconds, value))

    async def unmark(self, group: str, member: str) -> None:
        self._marks.get(group, {}).pop(member, None)
        self._deliver(MarkEvent(group, member, 0.0, ""))

    async def marks(self, group: str) -> dict[str, tuple[float, str]]:
        now = time.monotonic()
        live = {m: (until - now, value) for m, (until, value) in self._marks.get(group, {}).items() if until > now}
        self._marks[group] = {m: (now + left, value) for m, (left, value) in live.items()}
        return live
