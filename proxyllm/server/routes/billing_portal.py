"""Customer self-service: the Stripe Billing Portal, automatic recharge, saved cards.

Every route acts on the caller's own billing account; the master key names any account."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from proxyllm.billing.grants import grant_view
from proxyllm.billing.recharge import ensure_row, metadata_of, recharge_view
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.db.tables_billing import AutoRecharge
from proxyllm.server.deps import Admin, Caller
from proxyllm.server.routes.stripe import BillingDep, resolve_account

router = APIRouter(tags=["billing"])
MAX_THRESHOLD = Decimal(1_000_000)
MAX_CAP = Decimal(10_000_000)
MAX_GRANT = Decimal(1_000_000)


def _exact(value: JSONValue) -> JSONValue:
    return Decimal(repr(value)) if isinstance(value, float) else value


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(value) > 2000 or "\x00" in value:
        raise ValueError(f"'{name}' must be an http(s) URL of at most 2000 characters")
    return value


class Account(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_type: str | None = Field(default=None, max_length=16)  # admin only
    account_id: str | None = Field(default=None, max_length=255)  # admin only


class PortalBody(Account):
    return_url: str

    _return = field_validator("return_url")(lambda v: _url(v, "return_url"))


class CardBody(Account):
    success_url: str
    cancel_url: str

    _success = field_validator("success_url")(lambda v: _url(v, "success_url"))
    _cancel = field_validator("cancel_url")(lambda v: _url(v, "cancel_url"))


class RechargeBody(Account):
    enabled: bool
    threshold: Decimal
    amount: Decimal
    monthly_cap: Decimal

    _exact = field_validator("threshold", "amount", "monthly_cap", mode="before")(_exact)

    @field_validator("threshold", "amount", "monthly_cap")
    @classmethod
    def _money(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
            raise ValueError(f"'{info.field_name}' must be a non-negative amount with at most two decimals")
        return value


@router.post("/stripe/portal")
async def portal(body: PortalBody, billing: BillingDep, caller: Caller) -> JSONObject:
    """A Stripe Billing Portal session (invoices, receipts, payment methods) for the caller's account."""
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    customer = await billing.customer_for(account)
    url = await billing.api.create_portal_session(customer=customer, return_url=body.return_url)
    return {"url": url, "account_type": account[0], "account_id": account[1]}


@router.get("/stripe/auto_recharge")
async def get_auto_recharge(
    billing: BillingDep, caller: Caller, account_type: str | None = None, account_id: str | None = None
) -> JSONObject:
    account = resolve_account(billing, caller, account_type, account_id)
    async with billing.db.session() as session:
        row = await session.get(AutoRecharge, account)
        return recharge_view(row, account)


@router.put("/stripe/auto_recharge")
@router.post("/stripe/auto_recharge")  # the same, for clients (and the dashboard's bridge) without PUT
async def put_auto_recharge(body: RechargeBody, billing: BillingDep, caller: Caller) -> JSONObject:
    """Threshold, amount and monthly cap; ``enabled`` needs a saved card."""
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    if body.enabled:
        billing.check_topup_amount(body.amount)
        if body.threshold > MAX_THRESHOLD:
            raise invalid_request(f"'threshold' must be at most {MAX_THRESHOLD}", param="threshold")
        if not body.amount <= body.monthly_cap <= MAX_CAP:
            raise invalid_request(f"'monthly_cap' must be at least 'amount' and at most {MAX_CAP}", param="monthly_cap")
    async with billing.db.session() as session:
        row = await ensure_row(session, account, sqlite_db=billing.db.sqlite)
        if body.enabled and row.payment_method is None:
            raise invalid_request(
                "save a card first (POST /stripe/auto_recharge/card or /stripe/auto_recharge/setup_intent)",
                param="enabled",
                code="no_saved_card",
            )
        row.enabled = body.enabled
        row.threshold, row.amount, row.monthly_cap = body.threshold, body.amount, body.monthly_cap
        if body.enabled:
            row.disabled_reason = None
        view = recharge_view(row, account)
    if body.enabled:
        billing.recharger.enabled_accounts.add(account)
    else:
        billing.recharger.enabled_accounts.discard(account)
    return view


@router.post("/stripe/auto_recharge/card")
async def save_card(body: CardBody, billing: BillingDep, caller: Caller) -> JSONObject:
    """A Stripe Checkout page (setup mode) that saves a card for automatic recharges."""
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    customer = await billing.customer_for(account)
    session_id, url = await billing.api.create_setup_checkout(
        customer=customer,
        currency=billing.settings.currency,
        success_url=body.success_url,
        cancel_url=body.cancel_url,
        metadata=metadata_of(account),
    )
    return {"checkout_session_id": session_id, "checkout_url": url}


@router.post("/stripe/auto_recharge/setup_intent")
async def setup_intent(body: Account, billing: BillingDep, caller: Caller) -> JSONObject:
    """A SetupIntent for Stripe.js (Elements): confirm it in the browser with its client secret."""
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    customer = await billing.customer_for(account)
    intent, secret = await billing.api.create_setup_intent(customer=customer, metadata=metadata_of(account))
    return {"setup_intent": intent, "client_secret": secret}


# -- promotional credits ---------------------------------------------------------------------------


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str = Field(min_length=1, max_length=255)
    account_type: str | None = Field(default=None, max_length=16)
    amount: Decimal
    priority: int = Field(default=0, ge=-1000, le=1000)
    expires_at: datetime | None = None
    description: str | None = Field(default=None, max_length=500)

    _exact = field_validator("amount", mode="before")(_exact)

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or not 0 < value <= MAX_GRANT or value != value.quantize(Decimal("0.000001")):
            raise ValueError(f"'amount' must be more than 0 and at most {MAX_GRANT}, with at most six decimals")
        return value

    @field_validator("description")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("'description' must not contain NUL")
        return value


@router.post("/stripe/grants")
async def give_grant(body: GrantBody, billing: BillingDep, caller: Admin) -> JSONObject:
    """Give an account promotional credit (spent before paid credit; what is left expires)."""
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    expires = body.expires_at
    if expires is not None:
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            raise invalid_request("'expires_at' must be in the future", param="expires_at")
    row = await billing.grants.give(
        account, body.amount, priority=body.priority, expires_at=expires, description=body.description
    )
    return grant_view(row)


@router.get("/stripe/grants")
async def list_grants(
    billing: BillingDep, caller: Caller, account_type: str | None = None, account_id: str | None = None
) -> JSONObject:
    """The caller's promotional credits: amount, what is left, priority, expiry."""
    account = resolve_account(billing, caller, account_type, account_id)
    rows = await billing.grants.list(account)
    return {"object": "list", "data": [grant_view(r) for r in rows]}
