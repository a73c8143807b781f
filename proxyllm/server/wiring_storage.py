"""The proxy's storage parts from the config and environment: the database (and its migrations), the
spend writer with its spool, and the state shared by replicas (Redis, or this process)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from proxyllm.accounts.writer import SpendWriter
from proxyllm.config.schema import ProxyConfig
from proxyllm.core.background import cancel
from proxyllm.core.errors import StartupError
from proxyllm.core.shared_state import SharedState
from proxyllm.db import Database, resolve_database_url
from proxyllm.db.spool import Spool
from proxyllm.state import redis_url, shared_state

log = logging.getLogger("proxyllm")
MIGRATION_RETRY = 5.0  # seconds between attempts while the database is not usable


def database_timeouts(env: Mapping[str, str]) -> dict[str, int]:
    """PostgreSQL statement and lock timeouts (milliseconds) and pool sizes from the environment."""
    found: dict[str, int] = {}
    for name, arg, most, unit in (
        ("PROXYLLM_DB_STATEMENT_TIMEOUT_MS", "statement_timeout_ms", 3_600_000, "milliseconds"),
        ("PROXYLLM_DB_LOCK_TIMEOUT_MS", "lock_timeout_ms", 3_600_000, "milliseconds"),
        ("PROXYLLM_DB_POOL_SIZE", "pool_size", 1000, "connections"),  # admin and writer pool (as much again overflow)
        ("PROXYLLM_DB_HOT_POOL_SIZE", "hot_pool_size", 1000, "connections"),  # the request path's (prepaid)
    ):
        raw = env.get(name)
        if raw:
            if not raw.isdigit() or not 0 < int(raw) <= most:
                raise StartupError(f"{name} must be a whole number of {unit} from 1 to {most}, got {raw!r}")
            found[arg] = int(raw)
    return found


def spool_directory(env: Mapping[str, str], db: Database) -> str:
    """Where queued writes are journaled when the database is away at shutdown (and dead letters while
    it is down): PROXYLLM_SPOOL_DIR, else beside a SQLite file, else ./proxyllm-spool."""
    configured = env.get("PROXYLLM_SPOOL_DIR")
    if configured:
        return configured
    if db.sqlite:
        path = db.url.split("///", 1)[-1]
        if path and path != ":memory:":
            return os.path.join(os.path.dirname(os.path.abspath(path)), "proxyllm-spool")
    return os.path.abspath("proxyllm-spool")


def build_database(config: ProxyConfig, env: Mapping[str, str]) -> Database:
    return Database(resolve_database_url(config.general_settings.database_url, env), **database_timeouts(env))


def build_spend_writer(config: ProxyConfig, env: Mapping[str, str], db: Database) -> SpendWriter:
    """Spend logs and counters, written in batches every ``general_settings.proxy_batch_write_at`` seconds."""
    return SpendWriter(
        db,
        interval=config.general_settings.proxy_batch_write_at,
        spool=Spool(spool_directory(env, db), db.url),
        stop_deadline=float(env.get("PROXYLLM_SHUTDOWN_FLUSH_SECONDS") or 10),
    )


def build_shared_state(config: ProxyConfig, env: Mapping[str, str]) -> SharedState:
    rs = config.router_settings
    return shared_state(
        redis_url(url=rs.redis_url, host=rs.redis_host, port=rs.redis_port, password=rs.redis_password, env=env),
        namespace=rs.redis_namespace,
    )


class Migrations:
    """Migrate the database at start; while it is not usable, keep trying in the background (the proxy
    serves meanwhile, and readiness says the migrations have not run)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.done = False
        self._retry: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not await self._migrate():
            self._retry = asyncio.create_task(self._until_done())

    async def stop(self) -> None:
        await cancel(self._retry)

    async def _migrate(self) -> bool:
        try:
            await self.db.migrate()
        except Exception as error:
            log.error(
                "database %s is not usable yet (%s); retrying in the background",
                self.db.describe(),
                type(error).__name__,
            )
            return False
        self.done = True
        return True

    async def _until_done(self) -> None:
        while not await self._migrate():
            await asyncio.sleep(MIGRATION_RETRY)
