"""How billing plugs into a Runtime: enabled by the environment, contributing hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from proxyllm.billing.settings import BillingConfigError, billing_settings
from proxyllm.core.hooks import Hook
from proxyllm.db.database import Database

if TYPE_CHECKING:
    from proxyllm.billing.service import Billing
    from proxyllm.server.runtime import Runtime


def billing_from_env(env: Mapping[str, str], db: Database) -> Billing | None:
    try:
        settings = billing_settings(env)
    except BillingConfigError as exc:
        from proxyllm.server.runtime import StartupError

        raise StartupError(f"billing: {exc}") from None
    if settings is None:
        return None
    from proxyllm.billing.service import Billing

    return Billing(settings, db)


def billing_hooks(runtime: Runtime) -> list[Hook]:
    billing = runtime.billing
    if billing is None or not billing.settings.prepaid:
        return []
    from proxyllm.billing.hooks import PrepaidHook

    return [PrepaidHook(billing, runtime.router)]
