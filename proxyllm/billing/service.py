"""Billing as the rest of the proxy sees it: which account pays, top-ups, and background upkeep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import update

from proxyllm.accounts.end_users import END_USER
from proxyllm.billing.ledger import AccountRef, PrepaidLedger, Settlement
from proxyllm.billing.settings import BillingSettings
from proxyllm.core.background import cancel
from proxyllm.core.context import Principal, RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.database import Database
from proxyllm.db.spool import Payload
from proxyllm.db.tables import Team, User
from proxyllm.db.tables_billing import BillingAccount, Topup

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from proxyllm.accounts.writer import SpendWriter
    from proxyllm.billing.stripe_api import StripeAPI

log = logging.getLogger("proxyllm.billing")
CUSTOMER_TTL = 30.0
RECONCILE_INTERVAL = 60.0
RETRY_INTERVAL = 2.0
SETTLEMENT = "prepaid_settlement"


class Billing:
    def __init__(self, settings: BillingSettings, db: Database, api: StripeAPI | None = None) -> None:
        self.settings = settings
        self.db = db
        if api is None:
            from proxyllm.billing.stripe_api import StripeAPI  # the SDK loads only when billing is on

            api = StripeAPI(settings)
        self.api = api
        self.on_low_balance: Callable[[str], None] | None = None  # the metrics' counter (set by the runtime)
        self.ledger = PrepaidLedger(
            db,
            currency=settings.currency,
            low_balance_threshold=settings.low_balance_threshold,
            reservation_ttl=settings.reservation_ttl,
        )
        self.writer: SpendWriter | None = None
        # Looked up on every metered or gated request: cached briefly, dropped on changes on this replica.
        self._customers: dict[AccountRef, tuple[float, str | None]] = {}
        self.subscription_cache: dict[AccountRef, tuple[float, tuple[bool, str]]] = {}
        self._task: asyncio.Task[None] | None = None
        # Run after each account's settlement, in its transaction (e.g. auto-recharge).
        self.settlement_hooks: list[Callable[[AsyncSession, AccountRef, Settlement], Awaitable[None]]] = []
        from proxyllm.billing.grants import Grants
        from proxyllm.billing.recharge import Recharger

        self.grants = Grants(db, self.ledger)
        self.recharger = Recharger(self)
        # Grants first (they are spent before paid credit), then the recharge that may follow.
        self.settlement_hooks += [self.grants.on_settlement, self.recharger.on_settlement]

    # -- who pays ------------------------------------------------------------------------------

    def account_of_request(self, ctx: RequestContext) -> AccountRef:
        principal = ctx.principal
        assert principal is not None
        if self.settings.charge_by == "end_user_id":
            # the request's end user, wherever it was named (accounts/end_users.py)
            resolved = ctx.get(END_USER)
            end_user = resolved.id if resolved is not None else ctx.body.get("user")
            end_user = end_user or principal.metadata.get("end_user_id")
            if not isinstance(end_user, str) or not end_user:
                raise self._no_account("the request has no 'user' (end user id) to charge")
            return ("end_user", end_user)
        return self.account_of_principal(principal)

    def account_of_principal(self, principal: Principal) -> AccountRef:
        kind = self.settings.account_type
        ident = principal.user_id if kind == "user" else principal.team_id
        if kind == "end_user":
            ident = principal.metadata.get("end_user_id")
        if not ident:
            raise self._no_account(f"this key has no {self.settings.charge_by} to charge")
        return (kind, str(ident))

    def _no_account(self, why: str) -> ProxyError:
        return ProxyError(
            ErrorKind.INSUFFICIENT_QUOTA,
            f"{why} (prepaid billing charges by {self.settings.charge_by}; STRIPE_CHARGE_BY)",
            code="no_billing_account",
        )

    # -- Stripe customers ----------------------------------------------------------------------

    async def customer_id(self, account: AccountRef) -> str | None:
        hit = self._customers.get(account)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.session() as session:
            row = await session.get(BillingAccount, account)
            found = row.stripe_customer_id if row is not None else None
            if found is None and account[0] in ("user", "team"):
                owner: User | Team | None = await session.get(User if account[0] == "user" else Team, account[1])
                found = owner.stripe_customer_id if owner is not None else None
        self._customers[account] = (now + CUSTOMER_TTL, found)
        return found

    def forget(self, account: AccountRef) -> None:
        self._customers.pop(account, None)
        self.subscription_cache.pop(account, None)

    async def link_customer(self, account: AccountRef, customer_id: str) -> None:
        """Link an account to an existing Stripe Customer (checked with Stripe first)."""
        if not await self.api.retrieve_customer(customer_id):
            raise invalid_request(f"Stripe has no customer '{customer_id}'", param="stripe_customer_id")
        async with self.db.session() as session:
            row = await self.ledger.get(session, account)
            row.stripe_customer_id = customer_id
        self.forget(account)

    # -- top-ups -------------------------------------------------------------------------------

    def check_topup_amount(self, amount: Decimal) -> None:
        s = self.settings
        if amount != amount.quantize(Decimal("0.01")):
            raise invalid_request("'amount' can have at most two decimal places", param="amount")
        if not s.topup_min <= amount <= s.topup_max:
            raise invalid_request(
                f"'amount' must be between {s.topup_min} and {s.topup_max} {s.currency.upper()}", param="amount"
            )

    async def customer_for(self, account: AccountRef) -> str:
        """The account's Stripe Customer, created on first use and remembered."""
        async with self.db.session() as session:
            row = await self.ledger.get(session, account)
            if row.stripe_customer_id:
                return row.stripe_customer_id
            email = None
            if account[0] == "user":
                user = await session.get(User, account[1])
                email = user.user_email if user else None
        customer = await self.api.create_customer(account_type=account[0], account_id=account[1], email=email)
        async with self.db.session() as session:
            row = await self.ledger.get(session, account)
            if row.stripe_customer_id:  # created concurrently: keep the first
                return row.stripe_customer_id
            row.stripe_customer_id = customer
            self.forget(account)
            if account[0] == "user":
                await session.execute(
                    update(User).where(User.user_id == account[1]).values(stripe_customer_id=customer)
                )
            elif account[0] == "team":
                await session.execute(
                    update(Team).where(Team.team_id == account[1]).values(stripe_customer_id=customer)
                )
        return customer

    async def start_topup(
        self, account: AccountRef, amount: Decimal, success_url: str, cancel_url: str
    ) -> JSONObject:
        self.check_topup_amount(amount)
        customer = await self.customer_for(account)
        metadata = {"proxyllm_account_type": account[0], "proxyllm_account_id": account[1]}
        email = None
        if account[0] == "user":
            async with self.db.session() as session:
                user = await session.get(User, account[1])
                email = user.user_email if user is not None else None
        session_id, url = await self.api.create_checkout(
            customer=customer,
            amount=amount,
            currency=self.settings.currency,
            success_url=success_url,
            cancel_url=cancel_url,
            metadata=metadata,
            receipt_email=email,
        )
        async with self.db.session() as session:
            session.add(
                Topup(
                    checkout_session_id=session_id,
                    account_type=account[0],
                    account_id=account[1],
                    amount=amount,
                    currency=self.settings.currency,
                    status="created",
                )
            )
        return {
            "checkout_session_id": session_id,
            "checkout_url": url,
            "amount": float(amount),
            "currency": self.settings.currency,
            "account_type": account[0],
            "account_id": account[1],
        }

    # -- settlement, in the spend writer's batches ----------------------------------------------

    def attach(self, writer: SpendWriter) -> None:
        """Settlements ride in the spend writer's batch: off the request path, retried while the
        database is away, journaled at shutdown, and isolated if one is refused."""
        self.writer = writer
        writer.handlers[SETTLEMENT] = self._write_settlements

    def queue_settlement(self, account: AccountRef, request_id: str, cost: Decimal) -> None:
        assert self.writer is not None, "Billing.attach(writer) first"
        self.writer.add(
            SETTLEMENT, {"account_type": account[0], "account_id": account[1], "request_id": request_id, "cost": cost}
        )

    async def _write_settlements(self, session: AsyncSession, settlements: list[Payload]) -> None:
        batch = [_settlement(item) for item in settlements]
        for account, result in await self.ledger.settle_many(session, batch):
            if result.crossed_low_balance:
                log.warning("low balance: %s %s is at %s (below its threshold)", account[0], account[1], result.balance)
                if self.on_low_balance is not None:
                    self.on_low_balance(account[0])
            await self._after_settlement(session, account, result)

    async def _after_settlement(self, session: AsyncSession, account: AccountRef, result: Settlement) -> None:
        """Notifications (and hooks such as auto-recharge) in the settlement's own transaction."""
        notifier = self.ledger.notifier
        if notifier is not None and (result.crossed_low_balance or result.crossed_zero):
            from proxyllm.billing.notify import BALANCE_LOW, BALANCE_ZERO

            episode = uuid.uuid4().hex  # the crossing is seen once, under the account row's lock
            data = {"balance": result.balance, "currency": self.settings.currency}
            if result.crossed_low_balance:
                await notifier.emit(session, BALANCE_LOW, about=episode, account=account, data=data)
            if result.crossed_zero:
                await notifier.emit(session, BALANCE_ZERO, about=episode, account=account, data=data)
        for hook in self.settlement_hooks:
            await hook(session, account, result)

    async def _upkeep(self) -> None:
        since = 0.0
        while True:
            await asyncio.sleep(RETRY_INTERVAL)
            since += RETRY_INTERVAL
            try:
                await self.grants.expire_due()
            except Exception as exc:
                log.warning("grant expiry not done yet (%s); retrying", type(exc).__name__)
            if since >= RECONCILE_INTERVAL:
                since = 0.0
                with contextlib.suppress(Exception):
                    await self.ledger.release_expired()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._upkeep(), name="billing-upkeep")
            await self.recharger.start()

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self.recharger.stop()


def _settlement(item: Payload) -> tuple[AccountRef, str, Decimal]:
    """A queued settlement: the account, the request, and what it cost."""
    cost = item["cost"]
    if not isinstance(cost, Decimal):
        raise TypeError(f"a queued settlement's cost is {type(cost).__name__}, not Decimal")
    return (str(item["account_type"]), str(item["account_id"])), str(item["request_id"]), cost
