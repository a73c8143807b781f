"""Subscription state from Stripe webhooks, and access gated on it.

Webhooks (``customer.subscription.*``, ``invoice.paid``, ``invoice.payment_failed``) keep one row per
subscription. Events can arrive out of order, so an event older than the last one applied to a
subscription is ignored. A request is allowed while its account has a subscription that is
``active`` or ``trialing`` — or ``past_due`` within the configured grace.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.billing.ledger import AccountRef, PrepaidLedger
from proxyllm.billing.service import Billing
from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.hooks import Hook
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Team, User
from proxyllm.db.tables_billing import BillingAccount, Subscription

log = logging.getLogger("proxyllm.billing.subscriptions")
GOOD = ("active", "trialing")
STATE_TTL = 5.0


async def account_of_customer(session: AsyncSession, customer: str | None) -> AccountRef | None:
    if not customer:
        return None
    row = (
        (await session.execute(select(BillingAccount).where(BillingAccount.stripe_customer_id == customer)))
        .scalars()
        .first()
    )
    if row is not None:
        return (row.account_type, row.account_id)
    user = (await session.execute(select(User).where(User.stripe_customer_id == customer))).scalars().first()
    if user is not None:
        return ("user", user.user_id)
    team = (await session.execute(select(Team).where(Team.stripe_customer_id == customer))).scalars().first()
    if team is not None:
        return ("team", team.team_id)
    return None


def _first_item(obj: JSONObject) -> JSONObject:
    items = (obj.get("items") or {}).get("data") or []
    return items[0] if items and isinstance(items[0], dict) else {}


async def subscription_changed(
    ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int, deleted: bool = False
) -> str:
    account = await account_of_customer(session, obj.get("customer"))
    if account is None:
        log.warning(
            "subscription %s belongs to Stripe customer %s, which no account is linked to; ignored",
            obj.get("id"),
            obj.get("customer"),
        )
        return "ignored: unlinked customer"
    row = await session.get(Subscription, obj["id"])
    if row is not None and row.last_event_at > created:
        return "stale event ignored"
    item = _first_item(obj)
    status = "canceled" if deleted else str(obj.get("status"))
    if row is None:
        row = Subscription(
            subscription_id=obj["id"],
            account_type=account[0],
            account_id=account[1],
            stripe_customer_id=obj["customer"],
            status=status,
            cancel_at_period_end=False,
            last_event_at=created,
        )
        session.add(row)
    if row.status != status and ledger.notifier is not None:
        from proxyllm.billing.notify import SUBSCRIPTION_CHANGED

        await ledger.notifier.emit(
            session,
            SUBSCRIPTION_CHANGED,
            about=f"{obj['id']}:{status}:{created}",
            account=account,
            data={"subscription_id": obj["id"], "status": status, "previous_status": row.status},
        )
    if status == "past_due" and (row.status != "past_due" or row.past_due_since is None):
        row.past_due_since = created
    elif status != "past_due":
        row.past_due_since = None
    row.status = status
    row.price_id = (item.get("price") or {}).get("id") or row.price_id
    row.current_period_start = obj.get("current_period_start") or item.get("current_period_start")
    row.current_period_end = obj.get("current_period_end") or item.get("current_period_end")
    row.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    row.last_event_at = created
    return f"subscription {status}"


async def subscription_deleted(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int) -> str:
    return await subscription_changed(ledger, session, obj, created, deleted=True)


def _invoice_subscription(obj: JSONObject) -> str | None:
    sub = obj.get("subscription")
    if isinstance(sub, str):
        return sub
    details = ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return details if isinstance(details, str) else None


async def _invoice(session: AsyncSession, obj: JSONObject, outcome: str) -> str:
    sub_id = _invoice_subscription(obj)
    row = await session.get(Subscription, sub_id) if sub_id else None
    if row is None:
        return "ignored: unknown subscription"
    row.last_invoice_status = outcome
    return f"invoice {outcome}"


async def invoice_paid(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int) -> str:
    return await _invoice(session, obj, "paid")


async def invoice_payment_failed(
    ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int
) -> str:
    return await _invoice(session, obj, "payment_failed")


HANDLERS = {
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_deleted,
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
}


def subscription_view(row: Subscription) -> JSONObject:
    return {
        "subscription_id": row.subscription_id,
        "account_type": row.account_type,
        "account_id": row.account_id,
        "stripe_customer_id": row.stripe_customer_id,
        "status": row.status,
        "price_id": row.price_id,
        "current_period_start": row.current_period_start,
        "current_period_end": row.current_period_end,
        "cancel_at_period_end": row.cancel_at_period_end,
        "last_invoice_status": row.last_invoice_status,
    }


async def access(billing: Billing, account: AccountRef) -> tuple[bool, str]:
    """(allowed, why not) for an account, cached for a few seconds."""
    now = time.monotonic()
    hit = billing.subscription_cache.get(account)
    if hit is not None and hit[0] > now:
        return hit[1]
    async with billing.db.session() as session:
        rows = (
            (
                await session.execute(
                    select(Subscription).where(
                        Subscription.account_type == account[0], Subscription.account_id == account[1]
                    )
                )
            )
            .scalars()
            .all()
        )
    verdict = judge(list(rows), billing.settings.past_due_grace, account)
    billing.subscription_cache[account] = (now + STATE_TTL, verdict)
    return verdict


def judge(rows: list[Subscription], grace: float, account: AccountRef) -> tuple[bool, str]:
    if any(r.status in GOOD for r in rows):
        return True, ""
    for r in rows:
        if (
            r.status == "past_due"
            and grace > 0
            and r.past_due_since is not None
            and time.time() - r.past_due_since <= grace
        ):
            return True, ""
    if not rows:
        return False, f"{account[0]} '{account[1]}' has no subscription"
    statuses = ", ".join(sorted({r.status for r in rows}))
    return False, f"the subscription of {account[0]} '{account[1]}' is {statuses}; access needs an active one"


class SubscriptionHook(Hook):
    name = "subscriptions"

    def __init__(self, billing: Billing) -> None:
        self.billing = billing

    async def before_call(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        if principal is None or principal.is_admin:
            return
        account = self.billing.account_of_request(ctx)
        allowed, why = await access(self.billing, account)
        if not allowed:
            raise ProxyError(ErrorKind.INSUFFICIENT_QUOTA, why, code="subscription_inactive")
