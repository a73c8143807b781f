"""Stripe webhooks: verified on the raw body, processed once per event id, effects idempotent.

Stripe retries deliveries for days, sends them twice and out of order. The event id is recorded in
the same transaction as its effects, so a redelivery changes nothing; the ledger's (kind, reference)
uniqueness makes different events about the same payment (``completed`` then
``async_payment_succeeded``) credit it once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.billing.amounts import from_minor_units
from proxyllm.billing.ledger import AccountRef, PrepaidLedger
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.database import Database
from proxyllm.db.tables_billing import BillingAccount, StripeEvent, Topup

log = logging.getLogger("proxyllm.billing.webhook")
TOLERANCE = 300  # seconds a signature's timestamp may be off, in either direction
MAX_MINOR_UNITS = 10**11  # far above any single Stripe payment; keeps amounts inside the Money column
ACCOUNT_TYPES = frozenset({"user", "team", "end_user"})
Handler = Callable[[PrepaidLedger, AsyncSession, JSONObject, int], Awaitable[str]]


class Malformed(Exception):
    """A signed event whose fields are not what Stripe sends: recorded and ignored (Stripe would only
    retry it for days), never credited."""


def text_field(obj: JSONObject, name: str, *, required: bool = False, limit: int = 255) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        if required:
            raise Malformed(f"'{name}' is missing")
        return None
    if not isinstance(value, str):
        raise Malformed(f"'{name}' is not a string")
    if len(value) > limit or "\x00" in value:
        raise Malformed(f"'{name}' is longer than {limit} characters or has a NUL byte")
    return value


def minor_units(obj: JSONObject, name: str) -> int:
    """A non-negative whole amount in the currency's minor unit (cents), within bounds."""
    value = obj.get(name)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_MINOR_UNITS:
        raise Malformed(f"'{name}' is not a whole non-negative amount (got {str(value)[:32]!r})")
    return value


def _metadata(obj: JSONObject) -> JSONObject:
    meta = obj.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise Malformed("'metadata' is not an object")
    return meta


def _signed_at(signature: str) -> int | None:
    for part in signature.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            return int(value)
    return None


def verify(payload: bytes, signature: str | None, secret: str | None) -> JSONObject:
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
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("webhook payload is not valid JSON") from None
    signed_at = _signed_at(signature)
    if signed_at is None or signed_at > time.time() + TOLERANCE:  # the SDK checks only the past
        raise invalid_request("Stripe signature timestamp is in the future")
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise invalid_request("webhook payload is not valid JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        raise invalid_request("webhook payload is not a Stripe event")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255 or "\x00" in event_id:
        raise invalid_request("webhook payload is not a Stripe event (bad id)")
    return event


async def account_for(
    session: AsyncSession, *, payment_intent: str | None, metadata: JSONObject | None, customer: str | None
) -> tuple[AccountRef | None, Topup | None]:
    topup = None
    if payment_intent:
        topup = (await session.execute(select(Topup).where(Topup.payment_intent == payment_intent))).scalars().first()
        if topup is not None:
            return (topup.account_type, topup.account_id), topup
    meta = metadata or {}
    if meta.get("proxyllm_account_type") and meta.get("proxyllm_account_id"):
        kind = text_field(meta, "proxyllm_account_type", limit=16)
        ident = text_field(meta, "proxyllm_account_id")
        if kind not in ACCOUNT_TYPES or ident is None:
            raise Malformed("metadata names no valid proxyllm account")
        return (kind, ident), None
    if customer:
        row = (
            (await session.execute(select(BillingAccount).where(BillingAccount.stripe_customer_id == customer)))
            .scalars()
            .first()
        )
        if row is not None:
            return (row.account_type, row.account_id), None
    return None, None


async def _checkout(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, *, paid: bool) -> str:
    session_id = text_field(obj, "id", required=True)
    assert session_id is not None
    payment_intent = text_field(obj, "payment_intent")
    currency = (text_field(obj, "currency", limit=8) or "").lower()
    cents = minor_units(obj, "amount_total")
    topup = await session.get(Topup, session_id)
    if topup is not None:
        account: AccountRef | None = (topup.account_type, topup.account_id)
    else:
        account, _ = await account_for(
            session, payment_intent=None, metadata=_metadata(obj), customer=text_field(obj, "customer")
        )
    if account is None:
        log.warning("checkout session %s is not one of ours; ignored", session_id)
        return "ignored: unknown checkout session"
    amount = from_minor_units(cents)
    if topup is None:
        topup = Topup(
            checkout_session_id=session_id,
            account_type=account[0],
            account_id=account[1],
            amount=amount,
            currency=currency or ledger.currency,
        )
        session.add(topup)
    topup.payment_intent = payment_intent or topup.payment_intent
    if currency != ledger.currency:  # only what was paid in the ledger's currency is credited
        topup.status = "wrong_currency"
        log.error(
            "checkout session %s paid %s %s; only %s is credited (STRIPE_CURRENCY): not credited",
            session_id,
            cents,
            currency or "(no currency)",
            ledger.currency,
        )
        return f"not credited: currency {currency or 'missing'} is not {ledger.currency}"
    if cents <= 0:
        topup.status = "failed" if topup.status != "paid" else topup.status
        return "not credited: no positive amount"
    if not paid:
        if topup.status != "paid":  # events arrive out of order: never undo a payment already seen
            topup.status = "pending"
        return "pending: waiting for the asynchronous payment"
    posted = await ledger.post(
        session,
        account,
        amount,
        kind="topup",
        reference=session_id,
        description=f"top-up via Stripe Checkout {session_id}",
    )
    topup.status = "paid"
    return "credited" if posted is not None else "already credited"


async def checkout_completed(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int) -> str:
    return await _checkout(ledger, session, obj, paid=obj.get("payment_status") in ("paid", "no_payment_required"))


async def async_payment_succeeded(
    ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int
) -> str:
    return await _checkout(ledger, session, obj, paid=True)


async def async_payment_failed(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int) -> str:
    topup = await session.get(Topup, text_field(obj, "id", required=True))
    if topup is None:
        return "ignored: unknown checkout session"
    topup.status = "failed"
    await ledger.post(
        session,
        (topup.account_type, topup.account_id),
        from_minor_units(0),
        kind="topup_failed",
        reference=topup.checkout_session_id,
        description=f"asynchronous payment failed for {topup.checkout_session_id}",
    )
    return "recorded failed payment"


def _same_currency(ledger: PrepaidLedger, obj: JSONObject) -> bool:
    currency = (text_field(obj, "currency", limit=8) or ledger.currency).lower()
    return currency == ledger.currency


async def charge_refunded(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int) -> str:
    charge_id = text_field(obj, "id", required=True)
    refunded = minor_units(obj, "amount_refunded")
    if not _same_currency(ledger, obj):
        return "ignored: not in the ledger's currency (never credited)"
    account, _ = await account_for(
        session,
        payment_intent=text_field(obj, "payment_intent"),
        metadata=_metadata(obj),
        customer=text_field(obj, "customer"),
    )
    if account is None:
        log.warning("refund of charge %s for an unknown account; ignored", charge_id)
        return "ignored: unknown account"
    delta = from_minor_units(refunded) - await ledger.refunded_so_far(session, str(charge_id))
    if delta <= 0:
        return "nothing new refunded"
    await ledger.post(
        session,
        account,
        -delta,
        kind="refund",
        reference=f"{charge_id}:{refunded}",
        description=f"refund of charge {charge_id}",
    )
    return "debited refund"


async def dispute_created(ledger: PrepaidLedger, session: AsyncSession, obj: JSONObject, created: int) -> str:
    dispute_id = text_field(obj, "id", required=True)
    cents = minor_units(obj, "amount")
    charge = text_field(obj, "charge")
    if not _same_currency(ledger, obj):
        return "ignored: not in the ledger's currency (never credited)"
    account, _ = await account_for(
        session, payment_intent=text_field(obj, "payment_intent"), metadata=_metadata(obj), customer=None
    )
    if account is None:
        log.warning("dispute %s for an unknown account; ignored", dispute_id)
        return "ignored: unknown account"
    amount = from_minor_units(cents)
    await ledger.post(
        session,
        account,
        -amount,
        kind="dispute",
        reference=str(dispute_id),
        description=f"dispute {dispute_id} on charge {charge}",
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
    db: Database, ledger: PrepaidLedger, event: JSONObject, extra: Mapping[str, Handler] | None = None
) -> JSONObject:
    """Apply an event once: its id and its effects commit together."""
    event_type = str(event.get("type"))[:100].replace("\x00", "")
    handler = (extra or {}).get(event_type) or HANDLERS.get(event_type) or recharge_handler(event_type)
    obj = event["data"].get("object") or {}
    created = event.get("created")
    async with db.session() as session:
        if await session.get(StripeEvent, event["id"]) is not None:
            return {"received": True, "result": "duplicate event ignored"}
        session.add(StripeEvent(event_id=event["id"], type=event_type))
        if handler is None:
            log.info("Stripe event %s of type %s ignored", event["id"], event_type)
            return {"received": True, "result": "ignored"}
        try:
            if not isinstance(obj, dict):
                raise Malformed("'data.object' is not an object")
            async with session.begin_nested():  # a malformed event's partial effects are undone
                result = await handler(ledger, session, obj, created if type(created) is int else 0)
        except Malformed as why:
            log.error("Stripe event %s (%s) is malformed and was ignored: %s", event["id"], event_type, why)
            result = f"ignored: malformed event ({why})"
    log.info("Stripe event %s (%s): %s", event["id"], event_type, result)
    return {"received": True, "result": result}


def recharge_handler(event_type: str) -> Handler | None:
    """Automatic recharge's events (billing/recharge.py builds on this module's field checks, so it is
    looked up when an event arrives, not when either module is imported)."""
    from proxyllm.billing.recharge import HANDLERS as RECHARGE_HANDLERS

    return RECHARGE_HANDLERS.get(event_type)
