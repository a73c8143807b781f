"""Shared state: counters, expiring marks and their announcements, as every replica of the proxy sees them.

Two implementations with one meaning: ``MemoryState`` (this process only) and ``RedisState`` (every
process that uses the same Redis and namespace). Nothing here is meant for the per-request hot path:
callers keep their own local view and use this to write through and to refresh it.

- counters: ``incr`` / ``incr_many`` add to integer keys that expire ``ttl`` seconds after they were
  created (a fixed window: per-minute usage, failures within a minute); a delta of 0 only reads.
- marks: ``mark(group, member, seconds, value)`` records that ``member`` is in some state for a while
  (a deployment cooling down, and why); ``marks(group)`` lists the live ones with the seconds left;
  each mark or ``unmark`` is announced to the group's subscribers, in every replica.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MarkEvent:
    group: str
    member: str
    seconds: float  # 0 when the mark was removed
    value: str


Subscriber = Callable[[MarkEvent], None]


class SharedState(ABC):
    name: str

    distributed = False  # whether this kind of state can be shared at all

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._on_recover: list[Callable[[], None]] = []

    @property
    def shared(self) -> bool:
        """True while what this process writes is seen by other processes."""
        return False

    def describe(self) -> str:
        return self.name

    def subscribe(self, group: str, callback: Subscriber) -> None:
        """Call ``callback`` for every mark or unmark in ``group`` (subscribe before ``start``)."""
        self._subscribers.setdefault(group, []).append(callback)

    def on_recover(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the backend is reachable again after an outage (reload what was missed)."""
        self._on_recover.append(callback)

    def _deliver(self, event: MarkEvent) -> None:
        for callback in self._subscribers.get(event.group, ()):
            callback(event)

    async def start(self) -> None:
        """Connect; never raises for an unreachable backend (it degrades instead)."""
        return None

    async def close(self) -> None:
        """Disconnect and stop background work."""
        return None

    @abstractmethod
    async def incr(self, key: str, amount: int, ttl: float) -> int:
        """Add ``amount`` to ``key`` (created with a ``ttl`` in seconds) and return the new value."""

    @abstractmethod
    async def incr_many(self, deltas: Mapping[str, int], ttl: float) -> dict[str, int]:
        """``incr`` every key at once (atomically); a delta of 0 only reads the current value."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Forget a counter."""

    @abstractmethod
    async def mark(self, group: str, member: str, seconds: float, value: str) -> None:
        """Mark ``member`` for ``seconds`` with ``value`` and announce it."""

    @abstractmethod
    async def unmark(self, group: str, member: str) -> None:
        """Remove a mark early and announce it."""

    @abstractmethod
    async def marks(self, group: str) -> dict[str, tuple[float, str]]:
        """The live marks of ``group``: member -> (seconds left, value)."""
