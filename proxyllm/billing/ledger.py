"""The prepaid ledger: balances that never go below what is reserved, and money that never moves twice.

Every balance change is one transaction that updates the account row and appends a ledger entry, so
``balance == sum(entries)`` always holds. Reservations are one conditional UPDATE
(``balance - reserved >= estimate``) — atomic on SQLite and PostgreSQL alike, on any number of
replicas. Credits and debits are idempotent on ``(kind, reference)``: a unique constraint backs the
check, so a payment, refund or request is accounted exactly once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import BindParameter, ColumnElement, delete, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.db.tables_billing import BillingAccount, LedgerEntry, Reservation

if TYPE_CHECKING:
    from proxyllm.billing.notify import Notifier
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.db.database import Database
from proxyllm.db.hot import UniqueViolation
from proxyllm.db.types import Money, to_units

log = logging.getLogger("proxyllm.billing")
ZERO = Decimal(0)
AccountRef = tuple[str, str]  # (account_type, account_id)
SETTLE_CHUNK = 1000  # request ids per IN (...) list


@dataclass(slots=True)
class Settlement:
    balance: Decimal
    crossed_low_balance: bool
    crossed_zero: bool = False  # this settlement used up the balance: requests are refused from now on
    charged: Decimal = ZERO  # what this settlement took from the balance


def money(amount: Decimal) -> BindParameter[Decimal]:
    """A bound amount in the stored unit, whatever side of an expression it lands on."""
    return literal(amount, Money())


def _where(account: AccountRef) -> ColumnElement[bool]:
    return (BillingAccount.account_type == account[0]) & (BillingAccount.account_id == account[1])


# One statement, one round trip: hold the amount if the balance covers it, and record the hold.
RESERVE_PG = f"""
WITH held AS (
    UPDATE {BillingAccount.__tablename__} SET reserved = reserved + $1
    WHERE account_type = $2 AND account_id = $3 AND balance - reserved >= $1 AND balance > 0
    RETURNING account_type, account_id
)
INSERT INTO {Reservation.__tablename__} (request_id, account_type, account_id, amount, expires_at)
SELECT $4, account_type, account_id, $1, $5 FROM held
RETURNING request_id
"""


def insufficient(account: AccountRef, available: Decimal, estimate: Decimal) -> ProxyError:
    return ProxyError(
        ErrorKind.INSUFFICIENT_QUOTA,
        f"insufficient prepaid balance for {account[0]} '{account[1]}': available {available:.6f}, this request "
        f"may cost up to {estimate:.6f}. Top up with POST /stripe/topup.",
        code="insufficient_quota",
    )


class PrepaidLedger:
    def __init__(self, db: Database, *, currency: str, low_balance_threshold: Decimal, reservation_ttl: float):
        self.db = db
        self.currency = currency
        self.low_balance_threshold = low_balance_threshold
        self.reservation_ttl = reservation_ttl
        self.notifier: Notifier | None = None  # set when notifications are configured (billing/notify.py)

    async def ensure_account(self, session: AsyncSession, account: AccountRef) -> None:
        dialect = sqlite if self.db.sqlite else postgresql
        stmt = dialect.insert(BillingAccount).values(
            account_type=account[0],
            account_id=account[1],
            currency=self.currency,
            balance=ZERO,
            reserved=ZERO,
            total_topups=ZERO,
            total_spent=ZERO,
            low_balance_notified=False,
        )
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["account_type", "account_id"]))

    async def get(self, session: AsyncSession, account: AccountRef) -> BillingAccount:
        await self.ensure_account(session, account)
        row = await session.get(BillingAccount, account, populate_existing=True)
        assert row is not None
        return row

    # -- requests ------------------------------------------------------------------------------

    async def reserve(self, account: AccountRef, amount: Decimal, request_id: str) -> None:
        """Hold ``amount`` for a request, or refuse with 402 if the balance cannot cover it.

        On PostgreSQL this is one statement (one round trip, atomic on its own): the conditional
        UPDATE of the balance and the INSERT of the reservation row in one CTE. An account with no row
        has no balance, so it is refused without one being created."""
        expires = datetime.now(UTC) + timedelta(seconds=self.reservation_ttl)
        if self.db.sqlite:
            held = await self._reserve_sqlite(account, amount, request_id, expires)
        else:
            try:
                held = bool(
                    await self.db.hot_rows(RESERVE_PG, to_units(amount), account[0], account[1], request_id, expires)
                )
            except UniqueViolation:  # a retry after the connection died: the first attempt had committed
                held = True
        if not held:
            async with self.db.session() as session:
                row = await session.get(BillingAccount, account)
                available = (row.balance - row.reserved) if row else ZERO
            raise insufficient(account, available, amount)

    async def _reserve_sqlite(self, account: AccountRef, amount: Decimal, request_id: str, expires: datetime) -> bool:
        async with self.db.session() as session:
            result = await session.execute(
                update(BillingAccount)
                .where(
                    _where(account),
                    BillingAccount.balance - BillingAccount.reserved >= money(amount),
                    BillingAccount.balance > money(ZERO),
                )
                .values(reserved=BillingAccount.reserved + money(amount))
            )
            if getattr(result, "rowcount", 0) != 1:
                return False
            session.add(
                Reservation(
                    request_id=request_id,
                    account_type=account[0],
                    account_id=account[1],
                    amount=amount,
                    expires_at=expires,
                )
            )
        return True

    async def settle_many(
        self, session: AsyncSession, items: list[tuple[AccountRef, str, Decimal]]
    ) -> list[tuple[AccountRef, Settlement]]:
        """Settle a batch in the caller's transaction with a few statements per account, not per
        request: the account's row is locked for one UPDATE, however many requests it settles (a
        busy account's row is what every reservation also needs). Idempotent per request id."""
        results: list[tuple[AccountRef, Settlement]] = []
        for start in range(0, len(items), SETTLE_CHUNK):
            results.extend(await self._settle_chunk(session, items[start : start + SETTLE_CHUNK]))
        return results

    async def _settle_chunk(
        self, session: AsyncSession, items: list[tuple[AccountRef, str, Decimal]]
    ) -> list[tuple[AccountRef, Settlement]]:
        ids = list({request_id for _, request_id, _ in items})
        held: dict[str, Decimal] = {
            rid: Decimal(amount)
            for rid, amount in (
                await session.execute(
                    delete(Reservation)
                    .where(Reservation.request_id.in_(ids))
                    .returning(Reservation.request_id, Reservation.amount)
                )
            ).all()
        }
        charged = set(
            (
                await session.execute(
                    select(LedgerEntry.reference).where(LedgerEntry.kind == "usage", LedgerEntry.reference.in_(ids))
                )
            ).scalars()
        )
        per_account: dict[AccountRef, list[tuple[str, Decimal, Decimal]]] = {}  # (request id, release, charge)
        for account, request_id, cost in items:
            release = held.pop(request_id, ZERO)
            charge = cost if cost and request_id not in charged else ZERO
            if charge:
                charged.add(request_id)
            per_account.setdefault(account, []).append((request_id, release, charge))
        results: list[tuple[AccountRef, Settlement]] = []
        for account, entries in per_account.items():
            release = sum((e[1] for e in entries), ZERO)
            charge = sum((e[2] for e in entries), ZERO)
            if not release and not charge:
                continue
            row = (
                await session.execute(
                    update(BillingAccount)
                    .where(_where(account))
                    .values(
                        reserved=BillingAccount.reserved - money(release),
                        balance=BillingAccount.balance - money(charge),
                        total_spent=BillingAccount.total_spent + money(charge),
                    )
                    .returning(
                        BillingAccount.balance,
                        BillingAccount.low_balance_threshold,
                        BillingAccount.low_balance_notified,
                    )
                )
            ).first()
            if row is None:
                continue
            balance, threshold, notified = row
            running = balance + charge
            rows = []
            for request_id, _, cost in entries:
                if cost:
                    running -= cost
                    rows.append(
                        {
                            "account_type": account[0],
                            "account_id": account[1],
                            "kind": "usage",
                            "amount": -cost,
                            "balance_after": running,
                            "reference": request_id,
                        }
                    )
            if rows:
                await session.execute(insert(LedgerEntry), rows)
            limit = self.low_balance_threshold if threshold is None else threshold
            crossed = bool(charge) and not notified and balance < limit <= balance + charge
            if crossed:
                await session.execute(update(BillingAccount).where(_where(account)).values(low_balance_notified=True))
            zero = bool(charge) and balance <= 0 < balance + charge
            results.append((account, Settlement(balance, crossed, zero, charge)))
        return results

    # -- money in and out ----------------------------------------------------------------------

    async def _exists(self, session: AsyncSession, kind: str, reference: str) -> bool:
        found = await session.execute(
            select(LedgerEntry.id).where(LedgerEntry.kind == kind, LedgerEntry.reference == reference)
        )
        return found.first() is not None

    async def post(
        self,
        session: AsyncSession,
        account: AccountRef,
        amount: Decimal,
        *,
        kind: str,
        reference: str,
        description: str | None = None,
    ) -> Decimal | None:
        """Move ``amount`` (signed) in the caller's transaction; None when this (kind, reference) was posted."""
        await self.ensure_account(session, account)
        if await self._exists(session, kind, reference):
            return None
        values: dict[str, object] = {"balance": BillingAccount.balance + money(amount)}
        if kind in ("topup", "auto_recharge"):
            values["total_topups"] = BillingAccount.total_topups + money(amount)
        balance = (
            await session.execute(
                update(BillingAccount).where(_where(account)).values(**values).returning(BillingAccount.balance)
            )
        ).scalar_one()
        if amount > 0 and balance >= self.low_balance_threshold:
            await session.execute(update(BillingAccount).where(_where(account)).values(low_balance_notified=False))
        session.add(
            LedgerEntry(
                account_type=account[0],
                account_id=account[1],
                kind=kind,
                amount=amount,
                balance_after=balance,
                reference=reference,
                description=description,
            )
        )
        await session.flush()  # the unique constraint backs the check above under a race
        log.info("ledger %s %s %s: %s (balance %s)", kind, account[0], account[1], amount, balance)
        if kind == "topup" and self.notifier is not None:
            from proxyllm.billing.notify import TOPUP_CREDITED

            await self.notifier.emit(
                session,
                TOPUP_CREDITED,
                about=reference,
                account=account,
                data={"amount": amount, "balance": Decimal(balance), "currency": self.currency, "reference": reference},
            )
        return Decimal(balance)

    async def adjust(self, session: AsyncSession, account: AccountRef, amount: Decimal, reason: str) -> Decimal:
        """A manual credit or debit, in the caller's transaction (so its audit row commits with it)."""
        balance = await self.post(
            session, account, amount, kind="adjustment", reference=str(uuid.uuid4()), description=reason
        )
        assert balance is not None
        return balance

    async def refunded_so_far(self, session: AsyncSession, charge_id: str) -> Decimal:
        total = (
            await session.execute(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.kind == "refund", LedgerEntry.reference.like(f"{charge_id}:%")
                )
            )
        ).scalar_one()
        return -Decimal(total)

    # -- housekeeping --------------------------------------------------------------------------

    async def release_expired(self) -> int:
        """Release reservations whose request never settled (e.g. the process died)."""
        async with self.db.session() as session:
            expired = (
                await session.execute(
                    delete(Reservation)
                    .where(Reservation.expires_at <= datetime.now(UTC))
                    .returning(Reservation.account_type, Reservation.account_id, Reservation.amount)
                )
            ).all()
            for account_type, account_id, amount in expired:
                await session.execute(
                    update(BillingAccount)
                    .where(_where((account_type, account_id)))
                    .values(reserved=BillingAccount.reserved - money(amount))
                )
        if expired:
            log.warning("released %d expired reservations", len(expired))
        return len(expired)
