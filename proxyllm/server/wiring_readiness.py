"""What ``/health/readiness`` reports: each check returns ``(name, {"status": ..., ...})``; a check
whose result has ``status: error`` and is required (the default) makes the proxy unhealthy."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from proxyllm import __version__
from proxyllm.accounts.writer import SpendWriter
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.shared_state import SharedState
from proxyllm.db import Database
from proxyllm.server.wiring_storage import Migrations

ReadinessCheck = Callable[[], Awaitable[tuple[str, JSONObject]]]


class DatabaseCheck:
    """The database answers, its migrations ran, and the queued writes reach it."""

    def __init__(self, db: Database, spend: SpendWriter, migrations: Migrations) -> None:
        self.db = db
        self.spend = spend
        self.migrations = migrations

    async def __call__(self) -> tuple[str, JSONObject]:
        problem = await self.db.ping()
        if problem is None and not self.migrations.done:
            problem = "migrations have not run yet"
        spend = self.spend
        result: JSONObject = {
            "status": "ok" if problem is None else "error",
            "url": self.db.describe(),
            "queued_spend_rows": spend.queued_rows,
            "queued_writes": spend.queued,
            "dead_letters": spend.dead_letters,
        }
        if spend.spool is not None:
            result["dead_letters_in_spool"] = spend.spool.count(spend.spool.dead_letters)
        if spend.failing_since is not None:
            seconds = round(time.monotonic() - spend.failing_since, 1)
            result["writes_failing_for_seconds"] = seconds
            if problem is None:
                result["status"] = "degraded"
                problem = f"queued writes have not reached the database for {seconds:g}s"
        if problem:
            result["error"] = problem
        return "database", result


class SharedStateCheck:
    """Shared state (Redis) is reported, never required: without it each replica counts alone."""

    def __init__(self, state: SharedState) -> None:
        self.state = state

    async def __call__(self) -> tuple[str, JSONObject]:
        state = self.state
        status = "ok" if state.shared or not state.distributed else "degraded"
        return "shared_state", {"status": status, "backend": state.describe(), "required": False}


async def readiness_report(checks: Sequence[ReadinessCheck], *, models: int, auth_open: bool) -> JSONObject:
    report: JSONObject = {
        "status": "healthy",
        "proxyllm_version": __version__,
        "models": models,
        "auth": "open" if auth_open else "master_key",
    }
    for check in checks:
        name, result = await check()
        report[name] = result
        if result.get("status") == "error" and result.get("required", True):
            report["status"] = "unhealthy"
    return report
