"""Background health checks: probe every deployment now and then, and feed the results to cooldowns.

A failed probe puts the deployment in cooldown until it is probed again; unhealthy deployments are
probed every ``recheck`` seconds (so a rebooted box is back soon), healthy ones every ``interval``.
A passing probe ends a cooldown that a probe started — not one caused by failing requests, which
ends on its own. ``/health`` shows the latest results instead of probing on every call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxyllm.core.background import cancel
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ProxyError
from proxyllm.core.routing.cooldowns import HEALTH_CHECK

if TYPE_CHECKING:
    from proxyllm.core.router import Router

log = logging.getLogger("proxyllm.health")
PROBE_TIMEOUT = 10.0


@dataclass(slots=True)
class ProbeResult:
    error: str | None
    checked_at: float  # wall clock
    due: float  # monotonic time of the next probe


async def probe(dep: Deployment, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when the deployment answers its provider's health check, else what went wrong."""
    try:
        async with asyncio.timeout(timeout):
            await dep.provider.check_health(dep)
    except ProxyError as err:
        return err.message
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except Exception as exc:  # a provider's bug must not stop the other probes
        log.exception("health check of %s failed unexpectedly", dep.describe())
        return f"health check failed: {type(exc).__name__}"
    return None


class HealthChecker:
    def __init__(
        self, router: Router, *, interval: float, recheck: float, timeout: float = PROBE_TIMEOUT, concurrency: int = 8
    ) -> None:
        self.router = router
        self.interval = interval
        self.recheck = min(recheck, interval)
        self.timeout = timeout
        self.results: dict[str, ProbeResult] = {}
        self._limit = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("background health check failed")
            await asyncio.sleep(min(self.recheck, self.interval))

    async def run_once(self, *, everything: bool = False) -> None:
        now = time.monotonic()
        due = [
            d
            for d in self.router.deployments
            if everything or d.id not in self.results or self.results[d.id].due <= now
        ]
        await asyncio.gather(*(self._check(d) for d in due))

    async def _check(self, dep: Deployment) -> None:
        async with self._limit:
            error = await probe(dep, self.timeout)
        stats = self.router.stats.get(dep.id)
        wait = self.interval if error is None else self.recheck
        self.results[dep.id] = ProbeResult(error, time.time(), time.monotonic() + wait)
        if stats is None:
            return
        if error is None:
            self.router.cooldowns.clear(stats, only_reason=HEALTH_CHECK)
        else:
            # Cooling until just after the next probe, which decides whether it comes back.
            self.router.cooldowns.start(stats, self.recheck + self.timeout, HEALTH_CHECK, detail=error)
