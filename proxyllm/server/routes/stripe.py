"""``/stripe/*``: balances, Checkout top-ups, the ledger, admin adjustments, and the webhook."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select

from proxyllm.accounts.views import money, when
from proxyllm.billing.ledger import AccountRef
from proxyllm.billing.service import Billing
from proxyllm.billing.subscriptions import HANDLERS as SUBSCRIPTION_HANDLERS
from proxyllm.billing.subscriptions import judge, subscription_view
from proxyllm.billing.webhooks import process, verify
from proxyllm.core.bounds import MAX_BIGINT, MAX_ID, MAX_MONEY
from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.db.tables_billing import BillingAccount, LedgerEntry, MeterEvent, Subscription
from proxyllm.ops import audit
from proxyllm.server.deps import Admin, Caller, RuntimeDep

router = APIRouter(tags=["billing"])
ACCOUNT_TYPES = ("user", "team", "end_user")


def get_billing(runtime: RuntimeDep) -> Billing:
    if runtime.billing is None:
        raise ProxyError(
            ErrorKind.NOT_FOUND,
            "Stripe billing is not enabled: set STRIPE_API_KEY and "
            "STRIPE_USE_PREPAID_BALANCE=true (or STRIPE_BILLING_METHOD)",
            code="billing_disabled",
        )
    return runtime.billing


BillingDep = Annotated[Billing, Depends(get_billing)]


def _exact(value: JSONValue) -> JSONValue:
    return Decimal(repr(value)) if isinstance(value, float) else value


class TopupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Decimal = Field(ge=-MAX_MONEY, le=MAX_MONEY, allow_inf_nan=False)
    success_url: str = Field(min_length=1, max_length=2048)
    cancel_url: str = Field(min_length=1, max_length=2048)
    account_type: str | None = Field(default=None, max_length=MAX_ID)  # admin only
    account_id: str | None = Field(default=None, max_length=MAX_ID)  # admin only

    _amount = field_validator("amount", mode="before")(_exact)


class AdjustBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str = Field(min_length=1, max_length=MAX_ID)
    account_type: str | None = Field(default=None, max_length=MAX_ID)
    amount: Decimal = Field(ge=-MAX_MONEY, le=MAX_MONEY, allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=500)

    _amount = field_validator("amount", mode="before")(_exact)


def resolve_account(
    billing: Billing, caller: Principal, account_type: str | None, account_id: str | None
) -> AccountRef:
    """Admins name any account; everyone else gets their own and only their own."""
    if caller.is_admin:
        if not account_id:
            raise invalid_request("as admin, name the account: account_id (and account_type)", param="account_id")
        kind = account_type or billing.settings.account_type
        if kind not in ACCOUNT_TYPES:
            raise invalid_request(f"account_type must be one of {', '.join(ACCOUNT_TYPES)}", param="account_type")
        return (kind, account_id)
    own = billing.account_of_principal(caller)
    if (account_id and account_id != own[1]) or (account_type and account_type != own[0]):
        raise ProxyError(ErrorKind.PERMISSION, "a key may only see its own billing account")
    return own


def account_view(row: BillingAccount, threshold: Decimal) -> JSONObject:
    limit = row.low_balance_threshold if row.low_balance_threshold is not None else threshold
    return {
        "account_type": row.account_type,
        "account_id": row.account_id,
        "balance": money(row.balance),
        "reserved": money(row.reserved),
        "available": money(row.balance - row.reserved),
        "total_topups": money(row.total_topups),
        "total_spent": money(row.total_spent),
        "low_balance_threshold": money(limit),
        "low_balance": row.balance < limit,
        "currency": row.currency,
        "stripe_customer_id": row.stripe_customer_id,
    }


@router.get("/stripe/balance")
async def balance(
    billing: BillingDep, caller: Caller, account_type: str | None = None, account_id: str | None = None
) -> JSONObject:
    account = resolve_account(billing, caller, account_type, account_id)
    async with billing.db.session() as session:
        row = await billing.ledger.get(session, account)
        return account_view(row, billing.settings.low_balance_threshold)


@router.post("/stripe/topup")
async def topup(body: TopupBody, billing: BillingDep, caller: Caller) -> JSONObject:
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    return await billing.start_topup(account, body.amount, body.success_url, body.cancel_url)


@router.get("/stripe/transactions")
async def transactions(
    billing: BillingDep,
    caller: Caller,
    account_type: str | None = None,
    account_id: str | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    starting_after: int | None = Query(default=None, ge=0, le=MAX_BIGINT),
) -> JSONObject:
    account = resolve_account(billing, caller, account_type, account_id)
    query = select(LedgerEntry).where(LedgerEntry.account_type == account[0], LedgerEntry.account_id == account[1])
    if starting_after is not None:
        query = query.where(LedgerEntry.id < starting_after)
    async with billing.db.session() as session:
        rows = (await session.execute(query.order_by(LedgerEntry.id.desc()).limit(limit + 1))).scalars().all()
    data = [
        {
            "id": r.id,
            "kind": r.kind,
            "amount": money(r.amount),
            "balance_after": money(r.balance_after),
            "reference": r.reference,
            "description": r.description,
            "created_at": when(r.created_at),
        }
        for r in rows[:limit]
    ]
    return {"object": "list", "data": data, "has_more": len(rows) > limit}


@router.get("/stripe/balances")
async def balances(
    billing: BillingDep,
    _: Admin,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=MAX_BIGINT),
) -> JSONObject:
    async with billing.db.session() as session:
        rows = (
            (
                await session.execute(
                    select(BillingAccount)
                    .order_by(BillingAccount.account_type, BillingAccount.account_id)
                    .offset(offset)
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        return {"data": [account_view(r, billing.settings.low_balance_threshold) for r in rows]}


@router.post("/stripe/balance/adjust")
async def adjust(body: AdjustBody, request: Request, billing: BillingDep, caller: Admin) -> JSONObject:
    """A manual credit or debit with a reason: one ledger entry and its audit row, in one transaction."""
    if body.amount == 0:
        raise invalid_request("'amount' must not be zero", param="amount")
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    async with billing.db.session() as session:
        new_balance = await billing.ledger.adjust(session, account, body.amount, body.reason)
        await audit.record(
            session,
            request,
            caller,
            action="billing.adjust",
            target=f"{account[0]}:{account[1]}",
            before={"balance": new_balance - body.amount},
            after={"balance": new_balance, "reason": body.reason},
        )
    return {"account_type": account[0], "account_id": account[1], "balance": money(new_balance)}


@router.post("/stripe/webhook")
async def webhook(request: Request, billing: BillingDep) -> JSONObject:
    payload = await request.body()
    event = verify(payload, request.headers.get("stripe-signature"), billing.settings.webhook_secret)
    result = await process(billing.db, billing.ledger, event, SUBSCRIPTION_HANDLERS)
    billing.subscription_cache.clear()  # other replicas see the change within the cache's few seconds
    return result


# -- meters ------------------------------------------------------------------------------------


class MeterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(min_length=1)
    event_name: str = Field(min_length=1)
    aggregation: Literal["sum", "count", "last"] = "sum"
    customer_mapping_key: str = "stripe_customer_id"
    value_key: str = "value"


@router.get("/stripe/meters")
async def list_meters(billing: BillingDep, _: Admin) -> JSONObject:
    return {"data": await billing.api.list_meters()}


@router.post("/stripe/meters")
async def create_meter(body: MeterBody, billing: BillingDep, _: Admin) -> JSONObject:
    return await billing.api.create_meter(
        {
            "display_name": body.display_name,
            "event_name": body.event_name,
            "default_aggregation": {"formula": body.aggregation},
            "customer_mapping": {"type": "by_id", "event_payload_key": body.customer_mapping_key},
            "value_settings": {"event_payload_key": body.value_key},
        }
    )


@router.post("/stripe/meters/{meter_id}/deactivate")
async def deactivate_meter(meter_id: str, billing: BillingDep, _: Admin) -> JSONObject:
    return await billing.api.deactivate_meter(meter_id)


@router.get("/stripe/meter-events")
async def meter_events(
    billing: BillingDep,
    _: Admin,
    status: Literal["pending", "sent", "failed"] | None = None,
    account_id: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> JSONObject:
    query = select(MeterEvent)
    if status:
        query = query.where(MeterEvent.status == status)
    if account_id:
        query = query.where(MeterEvent.account_id == account_id)
    async with billing.db.session() as session:
        rows = (await session.execute(query.order_by(MeterEvent.created_at.desc()).limit(limit))).scalars().all()
        counts = dict(
            (await session.execute(select(MeterEvent.status, func.count()).group_by(MeterEvent.status))).all()
        )
    data = [
        {
            "identifier": r.identifier,
            "account_type": r.account_type,
            "account_id": r.account_id,
            "stripe_customer_id": r.stripe_customer_id,
            "event_name": r.event_name,
            "value": r.value,
            "dimensions": r.dimensions,
            "timestamp": r.timestamp,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "sent_at": when(r.sent_at),
        }
        for r in rows
    ]
    return {"data": data, "counts": {s: int(counts.get(s, 0)) for s in ("pending", "sent", "failed")}}


# -- subscriptions -----------------------------------------------------------------------------


@router.get("/stripe/subscription")
async def subscription(
    billing: BillingDep, caller: Caller, account_type: str | None = None, account_id: str | None = None
) -> JSONObject:
    account = resolve_account(billing, caller, account_type, account_id)
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
    allowed, why = judge(list(rows), billing.settings.past_due_grace, account)
    return {
        "account_type": account[0],
        "account_id": account[1],
        "access": allowed,
        "reason": why or None,
        "subscriptions": [subscription_view(r) for r in rows],
    }


@router.get("/stripe/subscriptions")
async def subscriptions(
    billing: BillingDep,
    _: Admin,
    limit: int = Query(default=100, ge=1, le=1000),
) -> JSONObject:
    async with billing.db.session() as session:
        rows = (
            (await session.execute(select(Subscription).order_by(Subscription.updated_at.desc()).limit(limit)))
            .scalars()
            .all()
        )
    return {"data": [subscription_view(r) for r in rows]}
