"""Per-deployment request and token counts of the current minute, shared across replicas in batches.

Requests are counted when an attempt starts and tokens when a call ends, in this process, on the
deployment's stats. Every ``sync_interval`` the counts not yet written are added to shared state in
one atomic batch that returns everyone's totals; the router then sees ``synced + pending``. The
trade-off: no Redis round trip per request, at the price of rpm/tpm limits being overshot by what
other replicas send within one interval (0.2 s by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from proxyllm.core.routing.stats import DeploymentStats, minute_of
from proxyllm.core.shared_state import SharedState

COUNTER_TTL = 120.0  # a minute's counters outlive the minute a little, for late readers


class UsageSync:
    def __init__(
        self, state: SharedState, stats: Callable[[], Iterable[DeploymentStats]], *, track_all: bool = False
    ) -> None:
        self.state = state
        self.stats = stats
        self.track_all = track_all  # usage-based routing needs every deployment's count, not only limited ones

    def tracked(self, stats: DeploymentStats) -> bool:
        return self.track_all or stats.dep.rpm is not None or stats.dep.tpm is not None

    async def flush(self) -> None:
        minute = minute_of(time.time())
        deltas: dict[str, int] = {}
        sent: list[tuple[DeploymentStats, int, int, str]] = []
        for stats in self.stats():
            if not self.tracked(stats):
                continue
            stats.roll(minute)
            prefix = f"usage:{minute}:{stats.dep.id}"
            deltas[prefix + ":r"] = stats.pending_requests
            deltas[prefix + ":t"] = stats.pending_tokens
            sent.append((stats, stats.pending_requests, stats.pending_tokens, prefix))
        if not sent:
            return
        totals = await self.state.incr_many(deltas, COUNTER_TTL)
        for stats, requests, tokens, prefix in sent:
            if stats.minute != minute:
                continue  # the minute turned while we waited
            stats.pending_requests -= requests
            stats.pending_tokens -= tokens
            stats.synced_requests = totals[prefix + ":r"]
            stats.synced_tokens = totals[prefix + ":t"]
