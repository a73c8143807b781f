"""Cooldowns: a deployment that keeps failing is left out for a while, and comes back on its own.

A deployment cools down for ``cooldown_time`` seconds once it has ``allowed_fails`` failures within a
minute, at once when an upstream answers 429 and its group has another deployment (for the
Retry-After it sent, or ``cooldown_time``), and when a background health check fails. Failures that
say nothing about the deployment (bad requests, a timeout shorter than the deployment's own that the
client asked for) do not count.

The hot path only compares a deadline on the deployment's stats. With shared state every cooldown is
written through and announced; other replicas apply it from the announcement (milliseconds) or from
the periodic reload. Failure counts are also added up across replicas, off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine

from proxyllm.core import clock
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.routing.policy import RouterPolicy
from proxyllm.core.routing.stats import FAIL_WINDOW, DeploymentStats
from proxyllm.core.shared_state import MarkEvent, SharedState

log = logging.getLogger("proxyllm.router")

MARKS = "cooldown"
RATE_LIMITED = "rate_limited"
FAILING = "failing"
HEALTH_CHECK = "health_check"
MAX_RATE_LIMIT_COOLDOWN = 3600.0
COUNTED_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.UPSTREAM,
        ErrorKind.UPSTREAM_CONNECT,
        ErrorKind.TIMEOUT,
        ErrorKind.UNAVAILABLE,
        ErrorKind.AUTHENTICATION,
        ErrorKind.PERMISSION,
        ErrorKind.INSUFFICIENT_QUOTA,
        ErrorKind.NOT_FOUND,
    }
)


class Cooldowns:
    def __init__(self, policy: RouterPolicy, state: SharedState, find: Callable[[str], DeploymentStats | None]) -> None:
        self.policy = policy
        self.state = state
        self.find = find
        self.active: dict[str, DeploymentStats] = {}  # cooling, or cooled and not yet seen back
        self._soonest_end = math.inf
        self._tasks: set[asyncio.Task[object]] = set()

    # -- the hot path ------------------------------------------------------------------------

    def any_cooling(self, now: float) -> bool:
        if not self.active:
            return False
        if now < self._soonest_end:
            return True
        for stats in list(self.active.values()):
            self.cooling(stats, now)
        self._soonest_end = min((s.cool_until for s in self.active.values()), default=math.inf)
        return bool(self.active)

    def cooling(self, stats: DeploymentStats, now: float) -> bool:
        if stats.cool_until > now:
            return True
        if stats.cool_until:
            stats.cool_until = 0.0
            self.active.pop(stats.dep.id, None)
            log.info("deployment %s is back in rotation after its cooldown", stats.dep.describe())
        return False

    # -- failures ----------------------------------------------------------------------------

    def record_failure(self, stats: DeploymentStats, err: ProxyError, *, others: bool) -> None:
        """Count a failed call; start a cooldown when the deployment has failed too often."""
        if self.policy.disable_cooldowns:
            return
        now = clock.monotonic()
        if stats.cool_until > now:
            return  # already out: late failures of calls sent before the cooldown change nothing
        if err.kind is ErrorKind.RATE_LIMIT and others:
            seconds = min(err.retry_after or self.policy.cooldown_time, MAX_RATE_LIMIT_COOLDOWN)
            self.start(stats, seconds, RATE_LIMITED, detail=err.message)
            return
        if stats.count_failure(now) >= max(1, self.policy.allowed_fails):
            self.start(stats, self.policy.cooldown_time, FAILING, detail=err.message)
        elif self.state.shared:
            self._spawn(self._count_shared(stats, err.message))

    async def _count_shared(self, stats: DeploymentStats, detail: str) -> None:
        key = f"fails:{stats.dep.id}"
        total = await self.state.incr(key, 1, FAIL_WINDOW)
        if total >= max(1, self.policy.allowed_fails) and not self.cooling(stats, clock.monotonic()):
            await self.state.delete(key)
            if not self.cooling(stats, clock.monotonic()):
                self.start(stats, self.policy.cooldown_time, FAILING, detail=f"{detail} (failures across replicas)")

    # -- starting and ending -----------------------------------------------------------------

    def start(
        self, stats: DeploymentStats, seconds: float, reason: str, *, detail: str = "", announce: bool = True
    ) -> None:
        until = clock.monotonic() + seconds
        if until <= stats.cool_until:
            return
        stats.cool_until = until
        stats.cool_reason = reason
        stats.fails = 0
        self.active[stats.dep.id] = stats
        self._soonest_end = min(self._soonest_end, until)
        log.warning(
            "deployment %s cools down for %.1fs (%s)%s",
            stats.dep.describe(),
            seconds,
            reason,
            f": {detail[:300]}" if detail else "",
        )
        if announce and self.state.shared:
            self._spawn(self.state.mark(MARKS, stats.dep.id, seconds, reason))

    def clear(self, stats: DeploymentStats, *, only_reason: str | None = None, announce: bool = True) -> None:
        if not stats.cool_until or (only_reason is not None and stats.cool_reason != only_reason):
            return
        stats.cool_until = 0.0
        self.active.pop(stats.dep.id, None)
        log.info("deployment %s is back in rotation", stats.dep.describe())
        if announce and self.state.shared:
            self._spawn(self.state.unmark(MARKS, stats.dep.id))

    # -- from other replicas -----------------------------------------------------------------

    def on_event(self, event: MarkEvent) -> None:
        stats = self.find(event.member)
        if stats is None:
            return
        if event.seconds <= 0:
            self.clear(stats, announce=False)
            return
        self._apply(stats, event.seconds, event.value)

    def _apply(self, stats: DeploymentStats, seconds: float, reason: str) -> None:
        until = clock.monotonic() + seconds
        if until > stats.cool_until + 0.05:  # our own announcement comes back a moment later: not news
            stats.cool_until = until
            stats.cool_reason = reason
            self.active[stats.dep.id] = stats
            self._soonest_end = min(self._soonest_end, until)
            log.info(
                "deployment %s cools down for %.1fs (%s, from shared state)", stats.dep.describe(), seconds, reason
            )

    async def reload(self) -> None:
        """Apply every cooldown in shared state (at start, after an outage, and now and then)."""
        for member, (seconds, reason) in (await self.state.marks(MARKS)).items():
            stats = self.find(member)
            if stats is not None:
                self._apply(stats, seconds, reason)

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("writing a cooldown to shared state failed", exc_info=task.exception())
