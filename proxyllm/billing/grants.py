"""Promotional credits (grants): an amount, an expiry and a priority, spent before paid credit.

A grant is part of the balance from the moment it is given (ledger entry ``grant``), so reservations
and the ``balance == sum(entries)`` invariant need nothing new. What changes is which money a
settlement spends: the account's grants first (highest priority, then the soonest to expire), paid
credit after. When a grant expires, what is left of it leaves the balance (ledger entry
``grant_expiry``, once per grant); paid credit is never taken by an expiry.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select, update

from proxyllm.billing.ledger import AccountRef, PrepaidLedger, Settlement, money
from proxyllm.core import clock
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables_billing import BillingAccount, CreditGrant

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from proxyllm.db.database import Database

log = logging.getLogger("proxyllm.billing.grants")
ZERO = Decimal(0)
REFRESH = 10.0  # seconds between reloads of which accounts hold grants
EXPIRE_BATCH = 100


def grant_view(row: CreditGrant) -> JSONObject:
    from proxyllm.accounts.views import money as shown
    from proxyllm.accounts.views import when

    return {
        "grant_id": row.grant_id,
        "account_type": row.account_type,
        "account_id": row.account_id,
        "amount": shown(row.amount),
        "remaining": shown(row.remaining),
        "priority": row.priority,
        "expires_at": when(row.expires_at),
        "expired": row.expired,
        "description": row.description,
        "created_at": when(row.created_at),
    }


def _active(account: AccountRef, now: datetime) -> list[ColumnElement[bool]]:
    return [
        CreditGrant.account_type == account[0],
        CreditGrant.account_id == account[1],
        CreditGrant.expired.is_(False),
        CreditGrant.remaining > money(ZERO),
        or_(CreditGrant.expires_at.is_(None), CreditGrant.expires_at > now),
    ]


class Grants:
    def __init__(self, db: Database, ledger: PrepaidLedger) -> None:
        self.db = db
        self.ledger = ledger
        self.holders: set[AccountRef] = set()  # accounts with grants: a hint, re-read every REFRESH seconds
        self._refreshed = 0.0

    async def give(
        self,
        account: AccountRef,
        amount: Decimal,
        *,
        priority: int,
        expires_at: datetime | None,
        description: str | None,
    ) -> CreditGrant:
        grant_id = f"grant_{uuid.uuid4().hex[:24]}"
        async with self.db.session() as session:
            await self.ledger.post(
                session,
                account,
                amount,
                kind="grant",
                reference=grant_id,
                description=description or "promotional credit",
            )
            row = CreditGrant(
                grant_id=grant_id,
                account_type=account[0],
                account_id=account[1],
                amount=amount,
                remaining=amount,
                priority=priority,
                expires_at=expires_at,
                expired=False,
                description=description,
            )
            session.add(row)
            await session.flush()
            await session.refresh(row)
        self.holders.add(account)
        return row

    async def list(self, account: AccountRef) -> list[CreditGrant]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(CreditGrant)
                .where(CreditGrant.account_type == account[0], CreditGrant.account_id == account[1])
                .order_by(CreditGrant.created_at.desc())
                .limit(500)
            )
            return list(rows.scalars())

    # -- in the settlement's transaction --------------------------------------------------------

    async def on_settlement(self, session: AsyncSession, account: AccountRef, result: Settlement) -> None:
        """Spend the account's grants first: what was charged comes off their ``remaining``."""
        if result.charged <= 0 or account not in self.holders:
            return
        now = clock.now()
        query = (
            select(CreditGrant.grant_id, CreditGrant.remaining)
            .where(*_active(account, now))
            .order_by(CreditGrant.priority.desc(), CreditGrant.expires_at.asc().nulls_last(), CreditGrant.created_at)
        )
        if not self.db.sqlite:
            query = query.with_for_update()
        left = result.charged
        for grant_id, remaining in (await session.execute(query)).all():
            if left <= 0:
                break
            take = min(Decimal(remaining), left)
            await session.execute(
                update(CreditGrant)
                .where(CreditGrant.grant_id == grant_id)
                .values(remaining=CreditGrant.remaining - money(take))
            )
            left -= take

    # -- in the background ----------------------------------------------------------------------

    async def refresh(self) -> None:
        async with self.db.session() as session:
            rows = await session.execute(
                select(CreditGrant.account_type, CreditGrant.account_id)
                .where(CreditGrant.expired.is_(False), CreditGrant.remaining > money(ZERO))
                .distinct()
            )
            self.holders = {(t, i) for t, i in rows.all()}
        self._refreshed = clock.monotonic()

    async def expire_due(self) -> int:
        """Expire grants whose time has come: each once, its unspent rest debited from the balance."""
        if clock.monotonic() - self._refreshed >= REFRESH:
            await self.refresh()
        now = clock.now()
        async with self.db.session() as session:
            due = (
                (
                    await session.execute(
                        select(CreditGrant.grant_id)
                        .where(CreditGrant.expired.is_(False), CreditGrant.expires_at <= now)
                        .limit(EXPIRE_BATCH)
                    )
                )
                .scalars()
                .all()
            )
        for grant_id in due:
            async with self.db.session() as session:
                row = (
                    await session.execute(
                        update(CreditGrant)
                        .where(CreditGrant.grant_id == grant_id, CreditGrant.expired.is_(False))
                        .values(expired=True)
                        .returning(CreditGrant.account_type, CreditGrant.account_id, CreditGrant.remaining)
                    )
                ).first()
                if row is None:
                    continue  # another replica expired it
                account: AccountRef = (row[0], row[1])
                rest = Decimal(row[2])
                balance = (
                    await session.execute(
                        select(BillingAccount.balance).where(
                            BillingAccount.account_type == account[0], BillingAccount.account_id == account[1]
                        )
                    )
                ).scalar_one_or_none()
                debit = min(rest, Decimal(balance or 0))
                await session.execute(
                    update(CreditGrant).where(CreditGrant.grant_id == grant_id).values(remaining=money(ZERO))
                )
                if debit > 0:
                    await self.ledger.post(
                        session,
                        account,
                        -debit,
                        kind="grant_expiry",
                        reference=grant_id,
                        description=f"promotional credit {grant_id} expired",
                    )
                log.info("grant %s of %s %s expired (%s unspent)", grant_id, account[0], account[1], rest)
        return len(due)
