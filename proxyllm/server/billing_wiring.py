"""How billing plugs into a Runtime: enabled by the environment, contributing hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from proxyllm.billing.settings import BillingConfigError, billing_settings, budgets_at_price
from proxyllm.config.schema import ProxyConfig
from proxyllm.core.hooks import Hook
from proxyllm.db.database import Database

if TYPE_CHECKING:
    from proxyllm.billing.service import Billing
    from proxyllm.server.runtime import Runtime


def billing_from_env(env: Mapping[str, str], db: Database) -> Billing | None:
    try:
        settings = billing_settings(env)
    except BillingConfigError as exc:
        from proxyllm.core.errors import StartupError

        raise StartupError(f"billing: {exc}") from None
    if settings is None:
        return None
    from proxyllm.billing.service import Billing

    return Billing(settings, db)


def budgets_at_price_setting(config: ProxyConfig, env: Mapping[str, str]) -> bool:
    """``billing.budgets_at_price`` (else ``PROXYLLM_BUDGETS_AT_PRICE``): budgets count prices, not costs."""
    try:
        return budgets_at_price(config.billing.budgets_at_price, env)
    except BillingConfigError as exc:
        from proxyllm.core.errors import StartupError

        raise StartupError(f"billing: {exc}") from None


def billing_gates(runtime: Runtime) -> list[Hook]:
    """Who may be served at all, before the cache: subscriptions, then the meters' customer link."""
    billing = runtime.billing
    if billing is None:
        return []
    from proxyllm.billing.meters import MeterHook
    from proxyllm.billing.subscriptions import SubscriptionHook

    hooks: list[Hook] = []
    if billing.settings.subscriptions:
        hooks.append(SubscriptionHook(billing))
    if billing.settings.meters:
        hooks.append(MeterHook(billing, runtime.spend))
    return hooks


def price_hooks(runtime: Runtime) -> list[Hook]:
    """Customer prices (rate cards, markups), resolved right after the admission step: only when a
    markup is configured or billing is on (otherwise the price is the cost and nothing runs)."""
    from proxyllm.billing.prices import PriceConfigError, PriceHook, Prices, check_group_markups, global_markup

    try:
        markup = global_markup(runtime.env)
        check_group_markups(runtime.deployments)
    except PriceConfigError as exc:
        from proxyllm.core.errors import StartupError

        raise StartupError(f"billing: {exc}") from None
    has_group_markup = any(d.model_info.get("markup_percent") is not None for d in runtime.deployments)
    runtime.prices = Prices(runtime.db, markup=markup)
    if runtime.billing is None and markup is None and not has_group_markup:
        return []
    return [PriceHook(runtime.prices, runtime.billing)]


def notification_hooks(runtime: Runtime) -> list[Hook]:
    """Signed webhooks and email about balances, payments, budgets and subscriptions (billing/notify.py)."""
    from proxyllm.billing.notify import Notifier, NotifyConfigError, NotifyHook, notify_settings

    try:
        settings = notify_settings(runtime.env)
    except NotifyConfigError as exc:
        from proxyllm.core.errors import StartupError

        raise StartupError(f"notifications: {exc}") from None
    if not settings.enabled:
        return []
    notifier = Notifier(settings, runtime.db, writer=runtime.spend)
    if runtime.billing is not None:
        runtime.billing.ledger.notifier = notifier
    return [NotifyHook(notifier)]


def billing_charges(runtime: Runtime) -> list[Hook]:
    """Money reserved after the cache (a hit is never charged): prepaid credits."""
    billing = runtime.billing
    if billing is None or not billing.settings.prepaid:
        return []
    from proxyllm.billing.hooks import PrepaidHook, reserve_timeout
    from proxyllm.core.errors import StartupError

    try:
        timeout = reserve_timeout(runtime.env)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    billing.attach(runtime.spend)
    return [PrepaidHook(billing, timeout=timeout)]


async def link_account(runtime: Runtime, account: tuple[str, str], customer_id: str | None) -> None:
    """Admin set ``stripe_customer_id`` on a user, team or end user: check it with Stripe and link it."""
    if customer_id is None or runtime.billing is None:
        return
    await runtime.billing.link_customer(account, customer_id)
