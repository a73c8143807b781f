"""``/stripe/*``: balances, Checkout top-ups, the ledger, admin adjustments, and the webhook."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from proxyllm.accounts.views import money, when
from proxyllm.billing.ledger import AccountRef
from proxyllm.billing.service import Billing
from proxyllm.billing.tables import BillingAccount, LedgerEntry
from proxyllm.billing.webhooks import process, verify
from proxyllm.core.context import Principal
from proxyllm.errors import ErrorKind, ProxyError, invalid_request
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


def _exact(value: Any) -> Any:
    return Decimal(repr(value)) if isinstance(value, float) else value


class TopupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Decimal
    success_url: str = Field(min_length=1)
    cancel_url: str = Field(min_length=1)
    account_type: str | None = None  # admin only
    account_id: str | None = None  # admin only

    _amount = field_validator("amount", mode="before")(_exact)


class AdjustBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str = Field(min_length=1)
    account_type: str | None = None
    amount: Decimal
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


def account_view(row: BillingAccount, threshold: Decimal) -> dict[str, Any]:
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
) -> dict[str, Any]:
    account = resolve_account(billing, caller, account_type, account_id)
    async with billing.db.session() as session:
        row = await billing.ledger.get(session, account)
        return account_view(row, billing.settings.low_balance_threshold)


@router.post("/stripe/topup")
async def topup(body: TopupBody, billing: BillingDep, caller: Caller) -> dict[str, Any]:
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    return await billing.start_topup(account, body.amount, body.success_url, body.cancel_url)


@router.get("/stripe/transactions")
async def transactions(
    billing: BillingDep,
    caller: Caller,
    account_type: str | None = None,
    account_id: str | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    starting_after: int | None = None,
) -> dict[str, Any]:
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
    billing: BillingDep, _: Admin, limit: int = Query(default=100, ge=1, le=1000), offset: int = Query(default=0, ge=0)
) -> dict[str, Any]:
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
async def adjust(body: AdjustBody, billing: BillingDep, caller: Admin) -> dict[str, Any]:
    if body.amount == 0:
        raise invalid_request("'amount' must not be zero", param="amount")
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    new_balance = await billing.ledger.adjust(account, body.amount, body.reason)
    return {"account_type": account[0], "account_id": account[1], "balance": money(new_balance)}


@router.post("/stripe/webhook")
async def webhook(request: Request, billing: BillingDep) -> dict[str, Any]:
    payload = await request.body()
    event = verify(payload, request.headers.get("stripe-signature"), billing.settings.webhook_secret)
    return await process(billing.db, billing.ledger, event)
