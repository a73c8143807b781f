"""Spend logs and spend counters, written in batches off the hot path.

Requests only append to in-memory queues. A background task writes everything queued in one
transaction every ``interval`` seconds: spend-log rows (insert, ignoring ids already written), rows
for other tables that must land with them (e.g. the Stripe meter-event outbox), and per-account
increments (``spend = spend + delta``, exact across replicas). If the database is down
the batch stays queued and is retried; ``stop`` flushes what is left on graceful shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from proxyllm.accounts.durations import next_reset
from proxyllm.accounts.ledger import AccountId
from proxyllm.accounts.store import aware
from proxyllm.core.background import cancel
from proxyllm.db.database import Database
from proxyllm.db.tables import Key, SpendLog, Team, User

log = logging.getLogger("proxyllm.spend")
TABLES: dict[str, Any] = {"key": (Key, Key.token), "user": (User, User.user_id), "team": (Team, Team.team_id)}
ZERO = Decimal(0)


class SpendWriter:
    def __init__(self, db: Database, *, interval: float = 1.0, reset_interval: float = 10.0) -> None:
        self.db = db
        self.interval = interval
        self.reset_interval = reset_interval
        self.lock = asyncio.Lock()
        self._rows: list[dict[str, Any]] = []
        self._outbox: list[tuple[Any, dict[str, Any]]] = []  # (ORM table, row) written in the same batch
        self._deltas: dict[AccountId, Decimal] = {}
        self._writing: dict[AccountId, Decimal] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.written_rows = 0

    # -- called per request (no I/O) ----------------------------------------------------------

    def add_row(self, row: dict[str, Any]) -> None:
        self._rows.append(row)

    def add_outbox_row(self, table: Any, row: dict[str, Any]) -> None:
        """A row for another table, committed in the same transaction as the spend logs."""
        self._outbox.append((table, row))

    def add_charge(self, accounts: list[AccountId], cost: Decimal) -> None:
        deltas = self._deltas
        for account in accounts:
            deltas[account] = deltas.get(account, ZERO) + cost

    def unflushed(self, account: AccountId) -> Decimal:
        return self._deltas.get(account, ZERO) + self._writing.get(account, ZERO)

    @property
    def queued_rows(self) -> int:
        return len(self._rows)

    # -- background --------------------------------------------------------------------------

    async def flush(self) -> bool:
        """Write everything queued; on failure keep it queued. True when the queue was written."""
        async with self.lock:
            if not self._rows and not self._deltas and not self._outbox:
                return True
            rows, self._rows = self._rows, []
            outbox, self._outbox = self._outbox, []
            self._writing, self._deltas = self._deltas, {}
            try:
                async with self.db.session() as session:
                    if rows:
                        await session.execute(self._insert_ignore(SpendLog), rows)
                    by_table: dict[Any, list[dict[str, Any]]] = {}
                    for table, row in outbox:
                        by_table.setdefault(table, []).append(row)
                    for table, table_rows in by_table.items():
                        await session.execute(self._insert_ignore(table), table_rows)
                    for (kind, ident), delta in self._writing.items():
                        table, pk = TABLES[kind]
                        await session.execute(update(table).where(pk == ident).values(spend=table.spend + delta))
            except Exception as error:
                self._rows = rows + self._rows
                self._outbox = outbox + self._outbox
                for account, delta in self._writing.items():
                    self._deltas[account] = self._deltas.get(account, ZERO) + delta
                if not self._failing:
                    log.warning("spend not written yet (%s); %d rows queued, retrying", type(error).__name__, len(rows))
                self._failing = True
                return False
            finally:
                self._writing = {}
            if self._failing:
                log.info("spend writes resumed")
            self._failing = False
            self.written_rows += len(rows)
            return True

    def _insert_ignore(self, table: Any) -> Any:
        """INSERT that skips rows whose primary key was already written (a retried batch)."""
        dialect = sqlite if self.db.sqlite else postgresql
        core = table.__table__  # a Core insert: the ORM's bulk path costs far more per row
        keys = [column.name for column in core.primary_key.columns]
        return dialect.insert(core).on_conflict_do_nothing(index_elements=keys)

    async def reset_budgets(self) -> int:
        """Zero the spend of every account whose budget period ended; safe on several replicas."""
        moment = datetime.now(UTC)
        count = 0
        async with self.db.session() as session:
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
                        .values(spend=ZERO, budget_reset_at=following)
                    )
                    count += int(getattr(result, "rowcount", 0) or 0)
        return count

    async def _run(self) -> None:
        since_reset = 0.0
        while True:
            ok = await self.flush()
            await asyncio.sleep(self.interval if ok else min(self.interval * 5, 10.0))
            since_reset += self.interval
            if since_reset >= self.reset_interval:
                since_reset = 0.0
                with contextlib.suppress(Exception):
                    await self.reset_budgets()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="spend-writer")

    async def stop(self, deadline: float = 20.0) -> None:
        await cancel(self._task)
        self._task = None
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while not await self.flush():
            if loop.time() > end:
                log.error(
                    "shutting down with %d spend rows not written: the database stayed unavailable", len(self._rows)
                )
                return
            await asyncio.sleep(0.5)
