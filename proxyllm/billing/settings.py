"""Billing configuration, read from the environment (the names the seed's deployments already use)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

CHARGE_BY = ("user_id", "team_id", "end_user_id")
ACCOUNT_TYPES = {"user_id": "user", "team_id": "team", "end_user_id": "end_user"}

log = logging.getLogger("proxyllm.billing")


class BillingConfigError(Exception):
    pass


def _flag(env: Mapping[str, str], name: str) -> bool:
    return (env.get(name) or "").lower() in ("1", "true", "yes")


def _decimal(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = env.get(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BillingConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise BillingConfigError(f"{name} must not be negative")
    return value


FLAG_VALUES = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def budgets_at_price(configured: bool | None, env: Mapping[str, str] = os.environ) -> bool:
    """Whether key, user and team budgets count the customer's price instead of the operator's cost:
    ``billing.budgets_at_price`` in the config file, else ``PROXYLLM_BUDGETS_AT_PRICE``; off by default."""
    if configured is not None:
        return configured
    raw = (env.get("PROXYLLM_BUDGETS_AT_PRICE") or "").strip().lower()
    if not raw:
        return False
    if raw not in FLAG_VALUES:
        raise BillingConfigError(f"PROXYLLM_BUDGETS_AT_PRICE must be true or false, got {raw[:40]!r}")
    return FLAG_VALUES[raw]


@dataclass(frozen=True, slots=True)
class BillingSettings:
    api_key: str
    webhook_secret: str | None
    methods: frozenset[str]
    charge_by: str
    api_base: str | None
    currency: str
    topup_min: Decimal
    topup_max: Decimal
    low_balance_threshold: Decimal
    reservation_ttl: float
    meter_event_name: str = "proxyllm_tokens"
    meter_value: str = "tokens"  # tokens | input_output | cost
    meter_cost_unit: Decimal = Decimal(1_000_000)  # cost meters count micro-dollars by default
    meter_v2: bool = False  # send through the v2 meter event stream (100 events per call)
    meter_rate: float = 100.0  # events per second at most
    meter_retry_base: float = 2.0  # seconds before the first retry of a meter event; doubles after
    allow_unlinked: bool = False  # serve accounts with no Stripe customer, recording usage locally only
    past_due_grace: float = 0.0  # seconds a past_due subscription still gets access

    @property
    def meters(self) -> bool:
        return "meters" in self.methods

    @property
    def subscriptions(self) -> bool:
        return "subscriptions" in self.methods

    @property
    def prepaid(self) -> bool:
        return "prepaid" in self.methods

    @property
    def account_type(self) -> str:
        return ACCOUNT_TYPES[self.charge_by]


def billing_settings(env: Mapping[str, str] = os.environ) -> BillingSettings | None:
    """None unless STRIPE_API_KEY and a billing method are set: then nothing Stripe-related runs."""
    api_key = env.get("STRIPE_API_KEY")
    methods = {m.strip().lower() for m in (env.get("STRIPE_BILLING_METHOD") or "").split("+") if m.strip()}
    if (env.get("STRIPE_USE_PREPAID_BALANCE") or "").lower() in ("1", "true", "yes"):
        methods.add("prepaid")
    if env.get("STRIPE_METER_EVENT_NAME"):
        methods.add("meters")
    if not api_key or not methods:
        return None
    unknown = methods - {"prepaid", "meters", "subscriptions"}
    if unknown:
        raise BillingConfigError(f"STRIPE_BILLING_METHOD has unknown methods: {', '.join(sorted(unknown))}")
    charge_by = env.get("STRIPE_CHARGE_BY") or "user_id"
    if charge_by not in CHARGE_BY:
        raise BillingConfigError(f"STRIPE_CHARGE_BY must be one of {', '.join(CHARGE_BY)}, got {charge_by!r}")
    if env.get("STRIPE_MAX_RESERVATION"):
        log.warning("STRIPE_MAX_RESERVATION is ignored: a capped reservation would not bound what a request costs")
    meter_value = (env.get("STRIPE_METER_VALUE") or "tokens").lower()
    if meter_value not in ("tokens", "input_output", "cost"):
        raise BillingConfigError(f"STRIPE_METER_VALUE must be tokens, input_output or cost; got {meter_value!r}")
    return BillingSettings(
        api_key=api_key,
        webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
        methods=frozenset(methods),
        charge_by=charge_by,
        api_base=(env.get("STRIPE_API_BASE") or None),
        currency=(env.get("STRIPE_CURRENCY") or "usd").lower(),
        topup_min=_decimal(env, "STRIPE_TOPUP_MIN", "5"),
        topup_max=_decimal(env, "STRIPE_TOPUP_MAX", "10000"),
        low_balance_threshold=_decimal(env, "STRIPE_LOW_BALANCE_THRESHOLD", "1"),
        reservation_ttl=float(env.get("STRIPE_RESERVATION_TTL") or 3600),
        meter_event_name=env.get("STRIPE_METER_EVENT_NAME") or "proxyllm_tokens",
        meter_value=meter_value,
        meter_cost_unit=_decimal(env, "STRIPE_METER_COST_UNIT", "1000000"),
        meter_v2=_flag(env, "STRIPE_METER_V2"),
        meter_rate=float(env.get("STRIPE_METER_RATE") or 100),
        meter_retry_base=float(env.get("STRIPE_METER_RETRY_BASE") or 2),
        allow_unlinked=_flag(env, "STRIPE_ALLOW_UNLINKED"),
        past_due_grace=float(_decimal(env, "STRIPE_PAST_DUE_GRACE_HOURS", "0")) * 3600,
    )
