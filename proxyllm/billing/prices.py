"""What a customer is charged (the price), as opposed to what the upstream costs the operator (the cost).

A request's price comes from, in order:

1. the rate card assigned to its billing account, when the card lists the request's model group:
   ``input_per_token x (prompt - cached) + cached_input_per_token x cached + output_per_token x completion
   + per_request + per_image x images in the request + per_second x compute seconds``;
2. else the cost with a markup: the account's own ``markup_percent``, else the model group's
   (``model_info.markup_percent`` on the serving deployment), else the global one
   (``PROXYLLM_MARKUP_PERCENT``);
3. else (no markup anywhere) the cost itself.

An account with no rate card and no markup of its own (a user, an end user) takes its team's.

The prepaid ledger, the meters (``STRIPE_METER_VALUE=cost``) and the spend logs' ``price`` use the price;
LiteLLM's ``spend`` fields stay the cost. The worst-case price (``Admission.max_price``) is computed
the same way from the admission step's bounds and is what prepaid credit reserves, so it is still an
upper bound on what a request can be charged. Prices are exact decimals rounded to the nano-dollar
(the worst case rounded up).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from sqlalchemy import select

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ProxyError
from proxyllm.core.hooks import Hook
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.pricing import compute_seconds, seconds_bound
from proxyllm.db.database import Database
from proxyllm.db.tables_billing import BillingAccount, RateCardPrice
from proxyllm.db.types import QUANTUM

if TYPE_CHECKING:
    from proxyllm.billing.ledger import AccountRef
    from proxyllm.billing.service import Billing
    from proxyllm.core.deployment import Deployment

log = logging.getLogger("proxyllm.billing.prices")
ZERO = Decimal(0)
HUNDRED = Decimal(100)
MARKUP_MIN = Decimal(-100)  # a discount of 100% is free; below that would pay the customer
MARKUP_MAX = Decimal(100_000)
PLAN_TTL = 30.0  # seconds an account's pricing is cached on a replica
PLAN_TIMEOUT = 2.0  # seconds a request waits for its account's pricing to load
MAX_PLANS = 50_000  # cached accounts (end-user ids come from requests: the cache must not grow forever)
CARD_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
IMAGE_PART_TYPES = ("image_url", "image", "input_image")


class PriceConfigError(ValueError):
    pass


def parse_markup(raw: JSONValue, name: str) -> Decimal | None:
    """A markup percentage (e.g. ``25`` or ``"12.5"``), checked; None when not set."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise PriceConfigError(f"{name} must be a number (a percentage)")
    try:
        value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    except InvalidOperation:
        raise PriceConfigError(f"{name} must be a number (a percentage), got {raw!r}") from None
    if not value.is_finite() or not MARKUP_MIN <= value <= MARKUP_MAX:
        raise PriceConfigError(f"{name} must be between {MARKUP_MIN} and {MARKUP_MAX}")
    if value != value.quantize(QUANTUM):
        raise PriceConfigError(f"{name} can have at most 9 decimal places")
    return value


def global_markup(env: Mapping[str, str] = os.environ) -> Decimal | None:
    return parse_markup(env.get("PROXYLLM_MARKUP_PERCENT"), "PROXYLLM_MARKUP_PERCENT")


def group_markup(dep: Deployment) -> Decimal | None:
    """``model_info.markup_percent`` of a deployment (checked when the proxy starts)."""
    return parse_markup(dep.model_info.get("markup_percent"), f"model_info.markup_percent of {dep.model_name}")


@dataclass(frozen=True, slots=True)
class Rates:
    """One line of a rate card: the prices of one model group."""

    input_per_token: Decimal = ZERO
    output_per_token: Decimal = ZERO
    cached_input_per_token: Decimal | None = None
    per_request: Decimal = ZERO
    per_image: Decimal = ZERO
    per_second: Decimal = ZERO

    @classmethod
    def of(cls, row: RateCardPrice) -> Rates:
        return cls(
            input_per_token=row.input_per_token,
            output_per_token=row.output_per_token,
            cached_input_per_token=row.cached_input_per_token,
            per_request=row.per_request,
            per_image=row.per_image,
            per_second=row.per_second,
        )

    def view(self) -> dict[str, str | None]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else format(value.normalize(), "f")

        return {
            "input_per_token": text(self.input_per_token),
            "output_per_token": text(self.output_per_token),
            "cached_input_per_token": text(self.cached_input_per_token),
            "per_request": text(self.per_request),
            "per_image": text(self.per_image),
            "per_second": text(self.per_second),
        }


@dataclass(frozen=True, slots=True)
class PricePlan:
    """How one account is charged: its rate card's lines, its own markup, and the global markup."""

    global_markup: Decimal | None = None
    markup: Decimal | None = None  # the account's own
    rate_card: str | None = None
    rates: Mapping[str, Rates] = field(default_factory=dict)

    def markup_for(self, dep: Deployment | None) -> Decimal | None:
        if self.markup is not None:
            return self.markup
        found = group_markup(dep) if dep is not None else None
        return found if found is not None else self.global_markup

    def price(self, ctx: RequestContext) -> Decimal:
        return price_of(self, ctx)


def count_images(body: JSONObject) -> int:
    """Images the request sends (message parts and Ollama's ``images``)."""
    images = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and (part.get("type") in IMAGE_PART_TYPES or "image_url" in part):
                        images += 1
            extra = message.get("images")
            if isinstance(extra, list):
                images += len(extra)
    extra = body.get("images")
    if isinstance(extra, list):
        images += len(extra)
    return images


def _marked_up(cost: Decimal, markup: Decimal | None) -> Decimal:
    return cost if markup is None else cost * (HUNDRED + markup) / HUNDRED


def price_of(plan: PricePlan, ctx: RequestContext) -> Decimal:
    """What the customer is charged for a finished request (rounded to the nano-dollar)."""
    cost = ctx.cost or ZERO
    dep = ctx.deployment
    rates = plan.rates.get(ctx.model_group) if plan.rates else None
    if rates is None:
        return _marked_up(cost, plan.markup_for(dep)).quantize(QUANTUM, rounding=ROUND_HALF_UP)
    usage = ctx.usage
    if dep is None or (usage is None and not ctx.output_chunks):
        return ZERO  # nothing was served: a rate card charges for service, not for refusals
    units = usage.units if usage is not None else None
    images = count_images(ctx.body) + (units.images_in + units.images_out if units is not None else 0)
    price = rates.per_request + rates.per_image * images
    if units is not None and units.audio_seconds is not None:  # a transcription: per second of audio
        price += rates.per_second * units.audio_seconds
        rates = replace(rates, per_second=ZERO)
    if usage is not None:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_rate = rates.input_per_token if rates.cached_input_per_token is None else rates.cached_input_per_token
        price += rates.input_per_token * (usage.prompt_tokens - cached) + cached_rate * cached
        price += rates.output_per_token * usage.completion_tokens
        if rates.per_second:
            inp, out = compute_seconds(dep, usage, ctx.upstream_seconds)
            seconds = inp if usage.compute is None else inp + out  # wall time counts once
            price += rates.per_second * min(seconds, seconds_bound(dep))
    return price.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def worst_case_price(plan: PricePlan, ctx: RequestContext) -> Decimal:
    """The most ``price_of`` can come to for this request, from the admission step's bounds."""
    admission = ctx.admission
    group = ctx.group
    assert admission is not None and group is not None
    rates = plan.rates.get(ctx.model_group) if plan.rates else None
    if rates is None:
        markups = [plan.markup_for(dep) for dep in group.deployments] or [plan.markup_for(None)]
        worst = max((m for m in markups if m is not None), default=None)
        price = _marked_up(admission.max_cost, worst) if worst is None or worst > 0 else admission.max_cost
    else:
        input_rate = max(rates.input_per_token, rates.cached_input_per_token or ZERO)
        output = admission.max_output_tokens * admission.choices
        units = admission.units
        images = count_images(ctx.body) + (units.images_in + units.images_out if units is not None else 0)
        price = rates.per_request + rates.per_image * images
        if units is not None and units.audio_seconds is not None:
            price += rates.per_second * units.audio_seconds
        price += input_rate * admission.prompt_tokens + rates.output_per_token * output
        if rates.per_second and group.deployments:
            price += rates.per_second * max(seconds_bound(dep) for dep in group.deployments)
    return price.quantize(QUANTUM, rounding=ROUND_CEILING)


class Prices:
    """Price plans per billing account, read from the database and cached briefly on each replica."""

    def __init__(self, db: Database, *, markup: Decimal | None = None, ttl: float = PLAN_TTL) -> None:
        self.db = db
        self.markup = markup
        self.ttl = ttl
        self.default = PricePlan(global_markup=markup)
        # (account, its team when the account is a user or an end user) -> (expiry, plan)
        self._plans: dict[tuple[AccountRef, str | None], tuple[float, PricePlan]] = {}

    def forget(self, account: AccountRef | None = None) -> None:
        if account is None or account[0] == "team":  # a team's pricing is its members' fallback
            self._plans.clear()
        else:
            for cached in [c for c in self._plans if c[0] == account]:
                self._plans.pop(cached, None)

    async def plan_for(self, account: AccountRef | None, team: str | None = None) -> PricePlan:
        """The account's plan; an account with no pricing of its own takes its team's (``team``)."""
        if account is None:
            return self.default
        now = time.monotonic()
        key = (account, team if account[0] != "team" else None)
        hit = self._plans.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            async with asyncio.timeout(PLAN_TIMEOUT):
                plan = await self.load(account, key[1])
        except Exception as exc:  # a slow or absent database: the last known plan, else the defaults
            log.warning("pricing of %s %s not loaded (%s)", account[0], account[1], type(exc).__name__)
            return hit[1] if hit is not None else self.default
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        self._plans[key] = (now + self.ttl, plan)
        return plan

    async def load(self, account: AccountRef, team: str | None = None) -> PricePlan:
        async with self.db.session() as session:
            row = await session.get(BillingAccount, account)
            if (row is None or (row.rate_card is None and row.markup_percent is None)) and team:
                row = await session.get(BillingAccount, ("team", team))
            if row is None or (row.rate_card is None and row.markup_percent is None):
                return self.default
            rates: dict[str, Rates] = {}
            if row.rate_card is not None:
                lines = await session.execute(select(RateCardPrice).where(RateCardPrice.card == row.rate_card))
                rates = {line.model_group: Rates.of(line) for line in lines.scalars()}
            return PricePlan(global_markup=self.markup, markup=row.markup_percent, rate_card=row.rate_card, rates=rates)


class PriceHook(Hook):
    """Resolves the account's price plan once and bounds the request's price (``Admission.max_price``).

    Runs right after the admission step. With billing off, or for the master key, the plan is the
    global one (a markup, or none)."""

    name = "prices"

    def __init__(self, prices: Prices, billing: Billing | None) -> None:
        self.prices = prices
        self.billing = billing

    async def before_call(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        account = None
        if self.billing is not None and principal is not None and not principal.is_admin:
            try:
                account = self.billing.account_of_request(ctx)
            except ProxyError:
                account = None  # refused later by the billing hooks that need an account
        team = principal.team_id if principal is not None else None
        plan = await self.prices.plan_for(account, team)
        ctx.price_plan = plan
        if ctx.admission is not None and ctx.group is not None:
            ctx.admission.max_price = worst_case_price(plan, ctx)


def check_group_markups(deployments: list[Deployment]) -> None:
    """Refuse to start on a malformed ``model_info.markup_percent``."""
    for dep in deployments:
        group_markup(dep)
