"""Stripe webhooks: verified on the raw body, processed once per event id, effects idempotent.

Stripe retries deliveries for days, sends them twice and out of order. The event id is recorded in
the same transaction as its effects, so a redelivery changes nothing; the ledger's (kind, reference)
uniqueness makes different events about the same payment (``completed`` then
``async_payment_succeeded``) credit it once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.billing.amounts import from_minor_units
from proxyllm.billing.ledger import AccountRef, PrepaidLedger
from proxyllm.billing.tables import BillingAccount, StripeEvent, Topup
from proxyllm.db.database import Database
from proxyllm.errors import invalid_request

log = logging.getLogger("proxyllm.billing.webhook")
TOLERANCE = 300
Handler = Callable[[PrepaidLedger, AsyncSession, dict[str, Any], int], Awaitable[str]]


def verify(payload: bytes, signature: str | None, secret: str | None) -> dict[str, Any]:
    """The event, if the payload is signed with ``secret`` within the tolerance; else a 400."""
    if not secret:
        raise invalid_request("webhooks are not accepted: STRIPE_WEBHOOK_SECRET is not configured")
    if not signature:
        raise invalid_request("missing Stripe-Signature header")
    import stripe  # loaded only when a webhook arrives, i.e. billing is on

    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE)
    except stripe.SignatureVerificationError:
        raise invalid_request("Stripe signature verification failed (wrong secret, altered body or stale)") from None
    except ValueError:
        raise invalid_request("webhook payload is not valid JSON") from None
    event = orjson.loads(payload)
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("data"), dict):
        raise invalid_request("webhook payload is not a Stripe event")
    return event


async def account_for(
    session: AsyncSession, *, payment_intent: str | None, metadata: dict[str, Any] | None, customer: str | None
) -> tuple[AccountRef | None, Topup | None]:
    topup = None
    if payment_intent:
        topup = (await session.execute(select(Topup).where(Topup.payment_intent == payment_intent))).scalars().first()
        if topup is not None:
            return (topup.account_type, topup.account_id), topup
    meta = metadata or {}
    if meta.get("proxyllm_account_type") and meta.get("proxyllm_account_id"):
        return (str(meta["proxyllm_account_type"]), str(meta["proxyllm_account_id"])), None
    if customer:
        row = (
            (await session.execute(select(BillingAccount).where(BillingAccount.stripe_customer_id == customer)))
            .scalars()
            .first()
        )
        if row is not None:
            return (row.account_type, row.account_id), None
    return None, None


async def _checkout(ledger: PrepaidLedger, session: AsyncSession, obj: dict[str, Any], *, paid: bool) -> str:
    topup = await session.get(Topup, obj["id"])
    if topup is not None:
        account: AccountRef | None = (topup.account_type, topup.account_id)
    else:
        account, _ = await account_for(
            session, payment_intent=None, metadata=obj.get("metadata"), customer=obj.get("customer")
        )
    if account is None:
        log.warning("checkout session %s is not one of ours; ignored", obj.get("id"))
        return "ignored: unknown checkout session"
    amount = from_minor_units(int(obj.get("amount_total") or 0))
    if topup is None:
        topup = Topup(
            checkout_session_id=obj["id"],
            account_type=account[0],
            account_id=account[1],
            amount=amount,
            currency=str(obj.get("currency") or "usd"),
        )
        session.add(topup)
    topup.payment_intent = obj.get("payment_intent") or topup.payment_intent
    if not paid:
        if topup.status != "paid":  # events arrive out of order: never undo a payment already seen
            topup.status = "pending"
        return "pending: waiting for the asynchronous payment"
    posted = await ledger.post(
        session,
        account,
        amount,
        kind="topup",
        reference=obj["id"],
        description=f"top-up via Stripe Checkout {obj['id']}",
    )
    topup.status = "paid"
    return "credited" if posted is not None else "already credited"


async def checkout_completed(ledger: PrepaidLedger, session: AsyncSession, obj: dict[str, Any], created: int) -> str:
    return await _checkout(ledger, session, obj, paid=obj.get("payment_status") in ("paid", "no_payment_required"))


async def async_payment_succeeded(
    ledger: PrepaidLedger, session: AsyncSession, obj: dict[str, Any], created: int
) -> str:
    return await _checkout(ledger, session, obj, paid=True)


async def async_payment_failed(ledger: PrepaidLedger, session: AsyncSession, obj: dict[str, Any], created: int) -> str:
    topup = await session.get(Topup, obj["id"])
    if topup is None:
        return "ignored: unknown checkout session"
    topup.status = "failed"
    await ledger.post(
        session,
        (topup.account_type, topup.account_id),
        from_minor_units(0),
        kind="topup_failed",
        reference=obj["id"],
        description=f"asynchronous payment failed for {obj['id']}",
    )
    return "recorded failed payment"


async def charge_refunded(ledger: PrepaidLedger, session: AsyncSession, obj: dict[str, Any], created: int) -> str:
    account, _ = await account_for(
        session, payment_intent=obj.get("payment_intent"), metadata=obj.get("metadata"), customer=obj.get("customer")
    )
    if account is None:
        log.warning("refund of charge %s for an unknown account; ignored", obj.get("id"))
        return "ignored: unknown account"
    refunded = int(obj.get("amount_refunded") or 0)
    delta = from_minor_units(refunded) - await ledger.refunded_so_far(session, obj["id"])
    if delta <= 0:
        return "nothing new refunded"
    await ledger.post(
        session,
        account,
        -delta,
        kind="refund",
        reference=f"{obj['id']}:{refunded}",
        description=f"refund of charge {obj['id']}",
    )
    return "debited refund"


async def dispute_created(ledger: PrepaidLedger, session: AsyncSession, obj: dict[str, Any], created: int) -> str:
    account, _ = await account_for(
        session, payment_intent=obj.get("payment_intent"), metadata=obj.get("metadata"), customer=None
    )
    if account is None:
        log.warning("dispute %s for an unknown account; ignored", obj.get("id"))
        return "ignored: unknown account"
    amount = from_minor_units(int(obj.get("amount") or 0))
    await ledger.post(
        session,
        account,
        -amount,
        kind="dispute",
        reference=obj["id"],
        description=f"dispute {obj['id']} on charge {obj.get('charge')}",
    )
    return "debited dispute"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": checkout_completed,
    "checkout.session.async_payment_succeeded": async_payment_succeeded,
    "checkout.session.async_payment_failed": async_payment_failed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
}


async def process(
    db: Database, ledger: PrepaidLedger, event: dict[str, Any], extra: Mapping[str, Handler] | None = None
) -> dict[str, Any]:
    """Apply an event once: its id and its effects commit together."""
    event_type = str(event.get("type"))
    handler = (extra or {}).get(event_type) or HANDLERS.get(event_type)
    async with db.session() as session:
        if await session.get(StripeEvent, event["id"]) is not None:
            return {"received": True, "result": "duplicate event ignored"}
        session.add(StripeEvent(event_id=event["id"], type=event_type))
        if handler is None:
            log.info("Stripe event %s of type %s ignored", event["id"], event_type)
            return {"received": True, "result": "ignored"}
        result = await handler(ledger, session, event["data"].get("object") or {}, int(event.get("created") or 0))
    log.info("Stripe event %s (%s): %s", event["id"], event_type, result)
    return {"received": True, "result": result}
