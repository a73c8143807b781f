"""The accounts that carry spend (keys, users, teams): their tables, and the reset of budget periods."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from proxyllm.accounts.durations import next_reset
from proxyllm.accounts.store import aware
from proxyllm.db.tables import Key, Team, User

ZERO = Decimal(0)
# Each account kind a charge may name, with the column that identifies one.
TABLES: dict[str, tuple[type[Key] | type[User] | type[Team], InstrumentedAttribute[str]]] = {
    "key": (Key, Key.token),
    "user": (User, User.user_id),
    "team": (Team, Team.team_id),
}


async def reset_ended_periods(session: AsyncSession, moment: datetime) -> int:
    """Zero the spend (cost and price) of every key, user and team whose budget period ended by ``moment``
    and set its next reset; safe on several replicas (a row is reset only from the period it was read in)."""
    count = 0
    for table, pk in TABLES.values():
        rows = await session.execute(
            table.__table__.select().where(table.budget_reset_at <= moment, table.budget_duration.is_not(None))
        )
        for row in rows.mappings():
            previous = aware(row["budget_reset_at"])
            following = next_reset(moment, row["budget_duration"], previous)
            result = await session.execute(
                update(table)
                .where(pk == row[pk.key], table.budget_reset_at == row["budget_reset_at"])
                .values(spend=ZERO, spend_price=ZERO, budget_reset_at=following)
            )
            count += int(getattr(result, "rowcount", 0) or 0)
    return count
