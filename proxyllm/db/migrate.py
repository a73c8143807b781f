"""Run Alembic migrations to head, safely when several replicas start at once.

PostgreSQL: a transaction-scoped advisory lock serialises replicas, and the DDL runs in that same
transaction. SQLite: an exclusive lock on a file beside the database.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from proxyllm.db.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
ADVISORY_LOCK_ID = 0x70726F78  # "prox"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "heads")  # features add migrations as branches off 0001


async def upgrade(db: Database) -> None:
    if db.sqlite:
        await _upgrade_sqlite(db)
        return
    async with db.engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        await conn.run_sync(_upgrade)


async def _upgrade_sqlite(db: Database) -> None:
    path = db.engine.url.database
    lock_path = f"{path}.migrate-lock" if path and path != ":memory:" else None
    if lock_path:
        Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR) if lock_path else None
    try:
        if fd is not None:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade)
    finally:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
