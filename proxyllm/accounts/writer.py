"""Spend logs, spend counters, settlements and outbox rows, written in batches off the hot path.

Requests only append to in-memory queues. A background task writes everything queued in one
transaction every ``interval`` seconds: spend-log rows (insert, ignoring ids already written), rows
for other tables that must land with them (e.g. the Stripe meter-event outbox), per-account
increments of the cost and the price (``spend = spend + delta``, ``spend_price = spend_price + delta``,
exact across replicas) and prepaid settlements (handlers that other parts register by kind).

Failures are of two kinds, told apart by ``db.database.is_unavailable``:

- **The database is unavailable** (down, unreachable, a lock or statement timeout): everything stays
  queued and is retried. At shutdown, what could not be written is journaled to a local file
  (``db/spool.py``) and replayed at the next start, so no row is lost with the process.
- **A row is refused** (too long, a NUL byte, out of range): the batch is split in halves until the
  rows at fault are alone; those go to the ``dead_letters`` table with the reason (or to a local
  file while the database is down) and everything else is written. One bad row never stops the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import FromClause, Insert, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.accounts.account_tables import TABLES, ZERO, reset_ended_periods
from proxyllm.accounts.ledger import AccountId
from proxyllm.core import clock
from proxyllm.core.background import cancel
from proxyllm.db.database import Database, DatabaseUnavailable, is_unavailable
from proxyllm.db.spool import Item, Payload, Spool
from proxyllm.db.tables import Base, DeadLetter, SpendLog

log = logging.getLogger("proxyllm.spend")
SPEND_LOG = "spend_log"
CHARGE = "charge"
TABLE = "table:"  # + a table name: a row inserted as is (ignored when its primary key exists)
Handler = Callable[[AsyncSession, list[Payload]], Awaitable[None]]
ChargeWriter = Callable[[AsyncSession, str, Decimal], Awaitable[None]]  # (session, account id, amount)
Resetter = Callable[[AsyncSession], Awaitable[int]]
MAX_REASON = 1000
Charge = tuple[Decimal, Decimal]  # (cost, price) added to an account
NONE: Charge = (ZERO, ZERO)


def _plus(held: Charge | None, charge: Charge) -> Charge:
    return charge if held is None else (held[0] + charge[0], held[1] + charge[1])


def _charge(payload: Payload) -> Charge:
    """A queued charge's (cost, price); one journaled before prices were kept has its cost as its price."""
    amount, price = payload["amount"], payload.get("price")
    if not isinstance(amount, Decimal) or not isinstance(price, Decimal | None):
        raise TypeError(f"a queued charge holds {type(amount).__name__} and {type(price).__name__}, not Decimal")
    return amount, amount if price is None else price


def _account(payload: Payload) -> AccountId:
    """The account a queued charge names."""
    return str(payload["kind"]), str(payload["id"])


class SpendWriter:
    def __init__(
        self,
        db: Database,
        *,
        interval: float = 1.0,
        reset_interval: float = 10.0,
        spool: Spool | None = None,
        on_dead_letter: Callable[[str], None] | None = None,
        stop_deadline: float = 10.0,
    ) -> None:
        self.db = db
        self.stop_deadline = stop_deadline  # seconds to keep trying at shutdown before journaling
        self.interval = interval
        self.reset_interval = reset_interval
        self.spool = spool
        self.on_dead_letter = on_dead_letter
        self.handlers: dict[str, Handler] = {SPEND_LOG: self._write_spend_logs, CHARGE: self._write_charges}
        # Account kinds other than key/user/team register how their spend is written (e.g. end users).
        self.charge_writers: dict[str, ChargeWriter] = {}
        self.resetters: list[Resetter] = []  # more budget-period resets, run with reset_budgets
        self._items: list[Item] = []
        # Per account: (cost, price) not written yet, and being written by the flush in progress.
        self._deltas: dict[AccountId, Charge] = {}
        self._writing: dict[AccountId, Charge] = {}
        self._flush_lock = asyncio.Lock()  # one flush at a time; never shared with readers
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # set by stop(): the loop ends between batches, never inside one
        self._done: set[int] = set()  # items of the flush in progress already committed
        self._replayed: list[Path] = []  # journal files whose items are queued, deleted once written
        self.failing_since: float | None = None  # monotonic time of the first failed flush in a row
        self.flushing = False
        self.epoch = 0  # bumped whenever charges were committed (see accounts/cache.py)
        self.written_rows = 0
        self.dead_letters = 0

    # -- called per request (no I/O) ----------------------------------------------------------

    def add_row(self, row: dict[str, object]) -> None:
        self._items.append((SPEND_LOG, row))

    def add_outbox_row(self, table: type[Base], row: dict[str, object]) -> None:
        """A row for another table, committed in the same transaction as the spend logs."""
        self._items.append((TABLE + table.__tablename__, row))

    def add(self, kind: str, payload: Payload) -> None:
        """An item for a registered handler (e.g. a prepaid settlement)."""
        self._items.append((kind, payload))

    def add_charge(self, accounts: list[AccountId], cost: Decimal, price: Decimal | None = None) -> None:
        """Add a request's cost (``spend``) and price (``spend_price``; the cost when not given) to accounts."""
        charge = (cost, cost if price is None else price)
        deltas = self._deltas
        for account in accounts:
            deltas[account] = _plus(deltas.get(account), charge)

    def unflushed(self, account: AccountId, price: bool = False) -> Decimal:
        """What this replica charged ``account`` and has not written yet: the cost, or the price."""
        i = 1 if price else 0
        return self._deltas.get(account, NONE)[i] + self._writing.get(account, NONE)[i]

    @property
    def queued_rows(self) -> int:
        return sum(1 for kind, _ in self._items if kind == SPEND_LOG)

    @property
    def queued(self) -> int:
        return len(self._items) + len(self._deltas)

    # -- writing -----------------------------------------------------------------------------

    def _take(self) -> list[Item]:
        items, self._items = self._items, []
        for (kind, ident), delta in self._deltas.items():
            items.append((CHARGE, {"kind": kind, "id": ident, "amount": delta[0], "price": delta[1]}))
            self._writing[(kind, ident)] = _plus(self._writing.get((kind, ident)), delta)
        self._deltas = {}
        return items

    def _requeue(self, items: list[Item]) -> None:
        rest: list[Item] = []
        for kind, payload in items:
            if kind == CHARGE:
                account, charge = _account(payload), _charge(payload)
                self._forget_writing(account, charge)
                self._deltas[account] = _plus(self._deltas.get(account), charge)
            else:
                rest.append((kind, payload))
        self._items = rest + self._items

    def _forget_writing(self, account: AccountId, charge: Charge) -> None:
        held = self._writing.get(account, NONE)
        left = (held[0] - charge[0], held[1] - charge[1])
        if left[0] or left[1]:
            self._writing[account] = left
        else:
            self._writing.pop(account, None)

    async def flush(self) -> bool:
        """Write everything queued. True when nothing is left queued for an unavailable database."""
        async with self._flush_lock:
            items = self._take()
            if not items:
                return True
            self.flushing = True
            self._done = set()
            try:
                left = await self._write(items)
            except BaseException:  # cancelled (e.g. the shutdown deadline): keep what was not committed
                self._requeue([item for item in items if id(item) not in self._done])
                raise
            finally:
                self.flushing = False
            if left:
                self._requeue(left)
                if self.failing_since is None:
                    self.failing_since = clock.monotonic()
                    log.warning("spend not written yet (database unavailable); %d items queued, retrying", len(left))
                return False
            if self.failing_since is not None:
                log.info("spend writes resumed")
            self.failing_since = None
            if self._replayed:
                for path in self._replayed:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                self._replayed = []
            return True

    async def _write(self, items: list[Item]) -> list[Item]:
        """Write ``items``, isolating refused rows; returns what is left for an unavailable database."""
        try:
            async with self.db.session() as session:
                await self._apply(session, items)
        except DatabaseUnavailable:
            return items
        except Exception as error:
            if is_unavailable(error):
                return items
            if len(items) == 1:
                await self._dead_letter(items[0], error)
                self._committed(items, dead=True)
                return []
            middle = len(items) // 2
            left = await self._write(items[:middle])
            if left:  # the database went away while we were splitting: keep the rest queued as well
                return left + items[middle:]
            return await self._write(items[middle:])
        self._committed(items)
        return []

    def _committed(self, items: list[Item], *, dead: bool = False) -> None:
        charged = False
        self._done.update(id(item) for item in items)
        for kind, payload in items:
            if kind == CHARGE:
                self._forget_writing(_account(payload), _charge(payload))
                charged = True
            elif kind == SPEND_LOG and not dead:
                self.written_rows += 1
        if charged:
            self.epoch += 1

    async def _apply(self, session: AsyncSession, items: list[Item]) -> None:
        by_kind: dict[str, list[Payload]] = {}
        for kind, payload in items:
            by_kind.setdefault(kind, []).append(payload)
        for kind, payloads in by_kind.items():
            handler = self.handlers.get(kind)
            if handler is not None:
                await handler(session, payloads)
            elif kind.startswith(TABLE):
                table = Base.metadata.tables[kind[len(TABLE) :]]
                await session.execute(self._insert_ignore(table), payloads)
            else:
                raise LookupError(f"no writer for queued items of kind {kind!r}")

    async def _write_spend_logs(self, session: AsyncSession, rows: list[dict[str, object]]) -> None:
        await session.execute(self._insert_ignore(SpendLog.__table__), rows)

    async def _write_charges(self, session: AsyncSession, charges: list[Payload]) -> None:
        for charge in charges:
            (kind, ident), (cost, price) = _account(charge), _charge(charge)
            writer = self.charge_writers.get(kind)
            if writer is not None:
                await writer(session, ident, cost)
                continue
            table, pk = TABLES[kind]
            await session.execute(
                update(table)
                .where(pk == ident)
                .values(spend=table.spend + cost, spend_price=table.spend_price + price)
            )

    def _insert_ignore(self, table: FromClause) -> Insert:
        """INSERT that skips rows whose primary key was already written (a retried batch)."""
        dialect = sqlite if self.db.sqlite else postgresql
        keys = [column.name for column in table.primary_key]  # a Core insert: far cheaper per row
        statement: Insert = dialect.insert(table).on_conflict_do_nothing(index_elements=keys)
        return statement

    async def _dead_letter(self, item: Item, error: BaseException) -> None:
        kind, payload = item
        reason = f"{type(error).__name__}: {getattr(error, 'orig', None) or error}"[:MAX_REASON].replace("\x00", "")
        self.dead_letters += 1
        if self.on_dead_letter is not None:
            self.on_dead_letter(kind)
        log.error("a queued %s was refused by the database and set aside as a dead letter: %s", kind, reason)
        from proxyllm.db.spool import encode

        row = {"kind": kind[:64], "payload": encode(kind, payload).decode(), "reason": reason}
        try:
            async with self.db.session() as session:
                await session.execute(insert(DeadLetter), [row])
        except Exception:
            if self.spool is None:
                log.error("dead letter lost: no spool directory to keep it in")
                return
            self.spool.append(self.spool.dead_letters, [item])

    # -- the journal ---------------------------------------------------------------------------

    def replay_journal(self) -> int:
        """Queue what an earlier run journaled at shutdown (written with the next batch)."""
        if self.spool is None:
            return 0
        items, files = self.spool.take_journal()
        for kind, payload in items:
            if kind == CHARGE:
                account = _account(payload)
                self._deltas[account] = _plus(self._deltas.get(account), _charge(payload))
            else:
                self._items.append((kind, payload))
        self._replayed.extend(files)
        if items:
            log.warning("replaying %d queued writes journaled by an earlier run", len(items))
        return len(items)

    def _journal_rest(self) -> int:
        items = self._take()
        self._writing = {}
        if not items:
            return 0
        if self.spool is None:
            log.error("shutting down with %d queued writes and no spool directory: they are lost", len(items))
            return 0
        self.spool.append(self.spool.journal, items)
        log.error(
            "the database stayed unavailable: %d queued writes journaled to %s, replayed at the next start",
            len(items),
            self.spool.journal,
        )
        return len(items)

    # -- budgets -------------------------------------------------------------------------------

    async def reset_budgets(self) -> int:
        """Zero the spend (cost and price) of every account whose budget period ended; safe on several
        replicas."""
        async with self.db.session() as session:
            count = await reset_ended_periods(session, clock.now())
            for resetter in self.resetters:
                count += await resetter(session)
        return count

    # -- lifecycle -----------------------------------------------------------------------------

    async def _run(self) -> None:
        since_reset = 0.0
        while not self._stopping.is_set():
            try:
                ok = await self.flush()
            except Exception:
                log.exception("spend writer flush failed")
                ok = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval if ok else min(self.interval * 5, 10.0))
            if self._stopping.is_set():
                return
            since_reset += self.interval
            if since_reset >= self.reset_interval:
                since_reset = 0.0
                with contextlib.suppress(Exception):
                    await self.reset_budgets()

    async def start(self) -> None:
        self.replay_journal()
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="spend-writer")

    async def stop(self) -> None:
        """Write what is queued; what the database will not take within ``stop_deadline`` is journaled.

        A batch being written is let finish rather than cancelled: cancelled inside its transaction, it
        could leave that connection holding SQLite's write lock, and the final flush would wait out the
        busy timeout and journal everything (seen under load at SIGTERM)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.stop_deadline
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), max(0.1, end - loop.time()))
            await cancel(self._task)  # still writing at the deadline (a database that hangs)
        self._task = None
        while True:
            try:
                async with asyncio.timeout(max(0.1, end - loop.time())):
                    if await self.flush():
                        return
            except TimeoutError:
                pass
            if loop.time() >= end:
                self._journal_rest()
                return
            await asyncio.sleep(0.5)
