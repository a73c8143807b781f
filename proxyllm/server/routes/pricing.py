"""``/billing/rate_cards`` and ``/billing/pricing``: what customers are charged (billing/prices.py)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import delete, select, update

from proxyllm.billing.prices import CARD_NAME, PriceConfigError, Rates, parse_markup
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.db.tables_billing import BillingAccount, RateCardPrice
from proxyllm.server.deps import Admin, Caller, RuntimeDep
from proxyllm.server.routes.stripe import BillingDep, resolve_account

router = APIRouter(tags=["billing"])
MAX_PRICE = Decimal(1_000_000)  # dollars per unit: anything above is a typo
MAX_LINES = 1000


def _exact(value: JSONValue) -> JSONValue:
    return Decimal(repr(value)) if isinstance(value, float) else value


def _price(value: Decimal | None, name: str) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or not 0 <= value <= MAX_PRICE:
        raise ValueError(f"'{name}' must be a number from 0 to {MAX_PRICE}")
    if value != value.quantize(Decimal("1e-9")):
        raise ValueError(f"'{name}' can have at most 9 decimal places (nano-dollars)")
    return value


class RatesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_per_token: Decimal = Decimal(0)
    output_per_token: Decimal = Decimal(0)
    cached_input_per_token: Decimal | None = None
    per_request: Decimal = Decimal(0)
    per_image: Decimal = Decimal(0)
    per_second: Decimal = Decimal(0)

    _exact = field_validator("*", mode="before")(_exact)

    @field_validator("*")
    @classmethod
    def _bounded(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        return _price(value, str(info.field_name))


class RateCardBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: dict[str, RatesBody] = Field(max_length=MAX_LINES)

    @field_validator("models")
    @classmethod
    def _groups(cls, value: dict[str, RatesBody]) -> dict[str, RatesBody]:
        for group in value:
            if not 1 <= len(group) <= 255 or "\x00" in group:
                raise ValueError("model group names are 1 to 255 characters without NUL")
        return value


class PricingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str = Field(min_length=1, max_length=255)
    account_type: str | None = None
    rate_card: str | None = None  # null: none
    markup_percent: Decimal | None = None  # null: the model group's or global markup

    _exact = field_validator("markup_percent", mode="before")(_exact)


def _card_name(name: str) -> str:
    if not CARD_NAME.match(name):
        raise invalid_request("a rate card name is 1 to 64 letters, digits, '_', '.', ':' or '-'", param="name")
    return name


def _card_view(name: str, lines: list[RateCardPrice]) -> JSONObject:
    return {"name": name, "models": {line.model_group: Rates.of(line).view() for line in lines}}


@router.put("/billing/rate_cards/{name}")
async def put_rate_card(name: str, body: RateCardBody, runtime: RuntimeDep, _: Admin) -> JSONObject:
    """Create or replace a rate card: its lines are exactly the ones given."""
    card = _card_name(name)
    async with runtime.db.session() as session:
        await session.execute(delete(RateCardPrice).where(RateCardPrice.card == card))
        lines = [
            RateCardPrice(card=card, model_group=group, **rates.model_dump()) for group, rates in body.models.items()
        ]
        session.add_all(lines)
    if runtime.prices is not None:
        runtime.prices.forget()
    return _card_view(card, lines)


@router.get("/billing/rate_cards")
async def list_rate_cards(runtime: RuntimeDep, _: Admin) -> JSONObject:
    async with runtime.db.session() as session:
        rows = (await session.execute(select(RateCardPrice).order_by(RateCardPrice.card))).scalars().all()
    cards: dict[str, list[RateCardPrice]] = {}
    for row in rows:
        cards.setdefault(row.card, []).append(row)
    return {"data": [_card_view(name, lines) for name, lines in cards.items()]}


@router.delete("/billing/rate_cards/{name}")
async def delete_rate_card(name: str, runtime: RuntimeDep, _: Admin) -> JSONObject:
    card = _card_name(name)
    async with runtime.db.session() as session:
        await session.execute(delete(RateCardPrice).where(RateCardPrice.card == card))
        await session.execute(update(BillingAccount).where(BillingAccount.rate_card == card).values(rate_card=None))
    if runtime.prices is not None:
        runtime.prices.forget()
    return {"deleted": card}


@router.post("/billing/pricing")
async def set_pricing(body: PricingBody, runtime: RuntimeDep, billing: BillingDep, caller: Admin) -> JSONObject:
    """Assign an account its rate card and/or its own markup (both may be null)."""
    account = resolve_account(billing, caller, body.account_type, body.account_id)
    try:
        markup = parse_markup(body.markup_percent, "markup_percent")
    except PriceConfigError as exc:
        raise invalid_request(str(exc), param="markup_percent") from None
    card = None if body.rate_card is None else _card_name(body.rate_card)
    async with runtime.db.session() as session:
        if card is not None:
            found = await session.execute(select(RateCardPrice.card).where(RateCardPrice.card == card).limit(1))
            if found.first() is None:
                raise ProxyError(ErrorKind.NOT_FOUND, f"no rate card '{card}'", param="rate_card")
        row = await billing.ledger.get(session, account)
        row.rate_card, row.markup_percent = card, markup
    if runtime.prices is not None:
        runtime.prices.forget(account)
    return await _pricing_view(runtime, account)


@router.get("/billing/pricing")
async def get_pricing(
    runtime: RuntimeDep,
    billing: BillingDep,
    caller: Caller,
    account_type: str | None = None,
    account_id: str | None = None,
) -> JSONObject:
    """The caller's own prices (an admin names the account)."""
    account = resolve_account(billing, caller, account_type, account_id)
    return await _pricing_view(runtime, account)


async def _pricing_view(runtime: RuntimeDep, account: tuple[str, str]) -> JSONObject:
    assert runtime.prices is not None
    plan = await runtime.prices.load(account)
    markup = plan.markup if plan.markup is not None else plan.global_markup
    return {
        "account_type": account[0],
        "account_id": account[1],
        "rate_card": plan.rate_card,
        "markup_percent": None if markup is None else format(markup.normalize(), "f"),
        "models": {group: rates.view() for group, rates in plan.rates.items()},
    }
