"""Automatic recharge: a saved card charged off-session when the balance runs low.

1. The card is saved through Stripe (a Checkout Session in ``setup`` mode, or a SetupIntent for
   Stripe.js); ``setup_intent.succeeded`` stores its payment method on the account's row.
2. When a settlement leaves the balance under the account's threshold, the settlement's own
   transaction starts a recharge with one conditional UPDATE (``attempt IS NULL`` and the monthly cap
   not exceeded by ``charged + amount``). Two replicas, fifty settlements: one recharge.
3. A background sender creates the off-session PaymentIntent (``off_session=true, confirm=true``) with
   the attempt as Stripe's idempotency key, so a retry after a lost answer (or another replica's sender)
   never creates a second one.
4. The balance is credited by the webhook (``payment_intent.succeeded``), never by the API's answer.
   A decline, ``requires_action`` or ``payment_intent.payment_failed`` turns auto-recharge off, gives the
   attempt's amount back to the cap, and notifies (``auto_recharge.failed``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import stripe
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from proxyllm.billing.amounts import from_minor_units
from proxyllm.billing.ledger import AccountRef, PrepaidLedger, Settlement, money
from proxyllm.billing.notify import RECHARGE_FAILED, RECHARGE_SUCCEEDED
from proxyllm.billing.webhooks import Malformed, minor_units, text_field
from proxyllm.core.background import cancel
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import User
from proxyllm.db.tables_billing import AutoRecharge

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from proxyllm.billing.service import Billing

log = logging.getLogger("proxyllm.billing.recharge")
LEASE = timedelta(seconds=30)  # a sender creating a PaymentIntent holds the attempt this long
REFRESH = 10.0  # seconds between reloads of which accounts have auto-recharge on
SUCCESS_STATES = ("succeeded", "processing", "requires_capture")
METADATA_KEY = "proxyllm_recharge"


def period_of(now: datetime) -> str:
    return now.strftime("%Y-%m")


def metadata_of(account: AccountRef, attempt: str | None = None) -> dict[str, str]:
    found = {"proxyllm_account_type": account[0], "proxyllm_account_id": account[1]}
    if attempt is not None:
        found[METADATA_KEY] = attempt
    return found


def _where(account: AccountRef) -> ColumnElement[bool]:
    return (AutoRecharge.account_type == account[0]) & (AutoRecharge.account_id == account[1])


async def ensure_row(session: AsyncSession, account: AccountRef, *, sqlite_db: bool) -> AutoRecharge:
    dialect = sqlite if sqlite_db else postgresql
    await session.execute(
        dialect.insert(AutoRecharge)
        .values(
            account_type=account[0],
            account_id=account[1],
            enabled=False,
            threshold=money(Decimal(0)),
            amount=money(Decimal(0)),
            monthly_cap=money(Decimal(0)),
            period="",
            charged=money(Decimal(0)),
        )
        .on_conflict_do_nothing(index_elements=["account_type", "account_id"])
    )
    row = await session.get(AutoRecharge, account, populate_existing=True)
    assert row is not None
    return row


def recharge_view(row: AutoRecharge | None, account: AccountRef) -> JSONObject:
    from proxyllm.accounts.views import money as shown

    if row is None:
        return {"account_type": account[0], "account_id": account[1], "enabled": False, "card_saved": False}
    this_month = row.period == period_of(datetime.now(UTC))
    return {
        "account_type": row.account_type,
        "account_id": row.account_id,
        "enabled": row.enabled,
        "threshold": shown(row.threshold),
        "amount": shown(row.amount),
        "monthly_cap": shown(row.monthly_cap),
        "card_saved": row.payment_method is not None,
        "charged_this_month": shown(row.charged if this_month else Decimal(0)),
        "in_flight": row.attempt is not None,
        "disabled_reason": row.disabled_reason,
    }


class Recharger:
    def __init__(self, billing: Billing) -> None:
        self.billing = billing
        self.db = billing.db
        self.enabled_accounts: set[AccountRef] = set()  # refreshed in the background; a hint, not the truth
        self._task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    # -- in the settlement's transaction --------------------------------------------------------

    async def on_settlement(self, session: AsyncSession, account: AccountRef, result: Settlement) -> None:
        if account not in self.enabled_accounts:
            return
        now = datetime.now(UTC)
        period = period_of(now)
        await session.execute(
            update(AutoRecharge)
            .where(_where(account), AutoRecharge.period != period)
            .values(period=period, charged=money(Decimal(0)))
        )
        attempt = f"rc_{uuid.uuid4().hex}"
        started = (
            await session.execute(
                update(AutoRecharge)
                .where(
                    _where(account),
                    AutoRecharge.enabled.is_(True),
                    AutoRecharge.payment_method.is_not(None),
                    AutoRecharge.attempt.is_(None),
                    AutoRecharge.threshold > money(result.balance),
                    AutoRecharge.amount > money(Decimal(0)),
                    AutoRecharge.charged + AutoRecharge.amount <= AutoRecharge.monthly_cap,
                )
                .values(
                    attempt=attempt,
                    attempt_amount=AutoRecharge.amount,
                    attempt_at=None,
                    payment_intent=None,
                    charged=AutoRecharge.charged + AutoRecharge.amount,
                )
                .returning(AutoRecharge.attempt)
            )
        ).first()
        if started is not None:
            log.info("auto-recharge %s started for %s %s (balance %s)", attempt, account[0], account[1], result.balance)
            self.wake.set()

    # -- in the background: create the PaymentIntents --------------------------------------------

    async def claim(self) -> list[AutoRecharge]:
        now = datetime.now(UTC)
        async with self.db.session() as session:
            due = (
                await session.execute(
                    select(AutoRecharge.account_type, AutoRecharge.account_id, AutoRecharge.attempt).where(
                        AutoRecharge.attempt.is_not(None),
                        AutoRecharge.payment_intent.is_(None),
                        or_(AutoRecharge.attempt_at.is_(None), AutoRecharge.attempt_at < now - LEASE),
                    )
                )
            ).all()
            claimed = []
            for account_type, account_id, attempt in due:
                row = (
                    await session.execute(
                        update(AutoRecharge)
                        .where(
                            _where((account_type, account_id)),
                            AutoRecharge.attempt == attempt,
                            AutoRecharge.payment_intent.is_(None),
                            or_(AutoRecharge.attempt_at.is_(None), AutoRecharge.attempt_at < now - LEASE),
                        )
                        .values(attempt_at=now)
                        .returning(AutoRecharge)
                    )
                ).scalar_one_or_none()
                if row is not None:
                    claimed.append(row)
        return claimed

    async def charge(self, row: AutoRecharge) -> None:
        account: AccountRef = (row.account_type, row.account_id)
        attempt = row.attempt
        assert attempt is not None and row.attempt_amount is not None and row.payment_method is not None
        customer = await self.billing.customer_id(account)
        if customer is None:
            await self.fail(account, attempt, "the account has no Stripe customer")
            return
        email = await self._email(account)
        try:
            intent, status = await self.billing.api.charge_off_session(
                customer=customer,
                payment_method=row.payment_method,
                amount=row.attempt_amount,
                currency=self.billing.settings.currency,
                metadata=metadata_of(account, attempt),
                idempotency_key=attempt,
                receipt_email=email,
            )
        except stripe.CardError as error:
            await self.fail(account, attempt, f"card declined: {getattr(error, 'code', None) or 'declined'}")
            return
        except stripe.InvalidRequestError as error:
            code = getattr(error, "code", None) or "invalid"
            await self.fail(account, attempt, f"Stripe refused the payment: {code}")
            return
        except stripe.StripeError as error:  # unavailable: the lease runs out and the same key is retried
            log.warning("auto-recharge %s: Stripe unavailable (%s); retrying", attempt, type(error).__name__)
            return
        if status not in SUCCESS_STATES:
            await self.fail(account, attempt, f"the payment needs the customer ({status})", intent=intent)
            return
        async with self.db.session() as session:
            await session.execute(
                update(AutoRecharge)
                .where(_where(account), AutoRecharge.attempt == attempt)
                .values(payment_intent=intent)
            )
        log.info("auto-recharge %s: PaymentIntent %s is %s; credited by its webhook", attempt, intent, status)

    async def fail(self, account: AccountRef, attempt: str, reason: str, *, intent: str | None = None) -> None:
        async with self.db.session() as session:
            await fail_in(session, self.billing.ledger, account, attempt, reason, intent=intent)

    async def _email(self, account: AccountRef) -> str | None:
        if account[0] != "user":
            return None
        async with self.db.session() as session:
            user = await session.get(User, account[1])
            return user.user_email if user is not None else None

    async def refresh(self) -> None:
        async with self.db.session() as session:
            rows = await session.execute(
                select(AutoRecharge.account_type, AutoRecharge.account_id).where(AutoRecharge.enabled.is_(True))
            )
            self.enabled_accounts = {(t, i) for t, i in rows.all()}

    async def drain_once(self) -> int:
        rows = await self.claim()
        for row in rows:
            await self.charge(row)
        return len(rows)

    async def _run(self) -> None:
        since_refresh = REFRESH
        while True:
            try:
                if since_refresh >= REFRESH:
                    since_refresh = 0.0
                    await self.refresh()
                await self.drain_once()
            except Exception as exc:
                log.warning("auto-recharge sender: %s; retrying", type(exc).__name__)
            self.wake.clear()
            try:
                async with asyncio.timeout(0.5):
                    await self.wake.wait()
            except TimeoutError:
                pass
            since_refresh += 0.5

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="auto-recharge")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None


async def fail_in(
    session: AsyncSession,
    ledger: PrepaidLedger,
    account: AccountRef,
    attempt: str,
    reason: str,
    *,
    intent: str | None = None,
) -> bool:
    """Turn auto-recharge off after a failed attempt (once), give the amount back to the cap, notify."""
    row = (
        await session.execute(
            update(AutoRecharge)
            .where(_where(account), AutoRecharge.attempt == attempt)
            .values(
                enabled=False,
                disabled_reason=reason[:500],
                charged=AutoRecharge.charged - AutoRecharge.attempt_amount,
                attempt=None,
                attempt_amount=None,
                attempt_at=None,
                payment_intent=None,
            )
            .returning(AutoRecharge.amount)
        )
    ).first()
    if row is None:
        return False  # already settled one way or the other
    log.warning("auto-recharge %s for %s %s failed and was turned off: %s", attempt, account[0], account[1], reason)
    if ledger.notifier is not None:
        await ledger.notifier.emit(
            session,
            RECHARGE_FAILED,
            about=attempt,
            account=account,
            data={"reason": reason, "payment_intent": intent, "amount": row[0], "auto_recharge": "off"},
        )
    return True


# -- webhooks -----------------------------------------------------------------------------------


def _recharge_metadata(obj: JSONObject) -> tuple[AccountRef, str] | None:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
        return None  # e.g. the PaymentIntent behind a Checkout top-up: handled by checkout.session.*
    attempt = text_field(metadata, METADATA_KEY, required=True, limit=64)
    kind = text_field(metadata, "proxyllm_account_type", required=True, limit=16)
    ident = text_field(metadata, "proxyllm_account_id", required=True)
    if kind not in ("user", "team", "end_user"):
        raise Malformed("'metadata.proxyllm_account_type' is not an account type")
    assert attempt is not None and ident is not None
    return (kind, ident), attempt


async def payment_intent_succeeded(
    ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int
) -> str:
    found = _recharge_metadata(obj)
    if found is None:
        return "ignored: not an automatic recharge"
    account, attempt = found
    intent = text_field(obj, "id", required=True)
    assert intent is not None
    currency = (text_field(obj, "currency", limit=8) or "").lower()
    cents = minor_units(obj, "amount_received") or minor_units(obj, "amount")
    if currency != ledger.currency or cents <= 0:
        return f"not credited: {cents} {currency or 'no currency'}"
    amount = from_minor_units(cents)
    posted = await ledger.post(
        session, account, amount, kind="auto_recharge", reference=intent, description=f"automatic recharge {intent}"
    )
    await session.execute(
        update(AutoRecharge)
        .where(_where(account), AutoRecharge.attempt == attempt)
        .values(attempt=None, attempt_amount=None, attempt_at=None, payment_intent=None)
    )
    if posted is not None and ledger.notifier is not None:
        await ledger.notifier.emit(
            session,
            RECHARGE_SUCCEEDED,
            about=intent,
            account=account,
            data={"amount": amount, "balance": posted, "currency": ledger.currency, "payment_intent": intent},
        )
    return "credited" if posted is not None else "already credited"


async def payment_intent_failed(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int) -> str:
    found = _recharge_metadata(obj)
    if found is None:
        return "ignored: not an automatic recharge"
    account, attempt = found
    error = obj.get("last_payment_error")
    code = error.get("code") if isinstance(error, dict) else None
    reason = f"payment failed: {code if isinstance(code, str) else 'declined'}"[:200]
    done = await fail_in(session, ledger, account, attempt, reason, intent=text_field(obj, "id"))
    return "auto-recharge turned off" if done else "ignored: attempt already settled"


async def setup_intent_succeeded(
    ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int
) -> str:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or "proxyllm_account_id" not in metadata:
        return "ignored: not one of ours"
    kind = text_field(metadata, "proxyllm_account_type", required=True, limit=16)
    ident = text_field(metadata, "proxyllm_account_id", required=True)
    if kind not in ("user", "team", "end_user"):
        raise Malformed("'metadata.proxyllm_account_type' is not an account type")
    method = text_field(obj, "payment_method", required=True)
    assert kind is not None and ident is not None
    row = await ensure_row(session, (kind, ident), sqlite_db=ledger.db.sqlite)
    row.payment_method = method
    return "card saved"


HANDLERS = {
    "payment_intent.succeeded": payment_intent_succeeded,
    "payment_intent.payment_failed": payment_intent_failed,
    "setup_intent.succeeded": setup_intent_succeeded,
}
