"""Migration 0019 keeps end users made before it (billing accounts only) as end users. SQLite and PostgreSQL
(each on an empty database: the shared test template is migrated already)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text

from proxyllm.db import Database, resolve_database_url
from proxyllm.db.migrate import alembic_config
from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/migrate.db"
        return
    async with fresh_postgres_database() as url:
        yield url


async def test_end_users_known_as_billing_accounts_get_their_row(empty_database: str) -> None:
    db = Database(resolve_database_url(None, {"DATABASE_URL": empty_database}))
    try:

        def before_0019(conn: Connection) -> None:
            command.upgrade(alembic_config(conn), "0007")
            conn.execute(
                text(
                    "INSERT INTO billing_accounts (account_type, account_id, stripe_customer_id, currency, balance,"
                    " reserved, total_topups, total_spent, low_balance_notified) VALUES"
                    " ('end_user', 'shopper-9', 'cus_9', 'usd', 0, 0, 0, 0, false),"
                    " ('user', 'ann', NULL, 'usd', 0, 0, 0, 0, false)"
                )
            )

        async with db.engine.begin() as conn:
            await conn.run_sync(before_0019)
        await db.migrate()
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT user_id, spend, blocked, budget_id FROM end_users"))).all()
        assert [tuple(r) for r in rows] == [("shopper-9", 0, False, None)]
    finally:
        await db.close()
