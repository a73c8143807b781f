"""The accounts parts: end users and virtual keys (cached, with the spend writer's unflushed amounts
added to what the database says), and the authenticator over them."""

from __future__ import annotations

from collections.abc import Mapping

from proxyllm.accounts.auth import Authenticator
from proxyllm.accounts.cache import KeyCache
from proxyllm.accounts.end_users import KIND as END_USER_KIND
from proxyllm.accounts.end_users import EndUsers
from proxyllm.accounts.writer import SpendWriter
from proxyllm.config.schema import ProxyConfig
from proxyllm.db import Database


def _writer_state(spend: SpendWriter) -> tuple[bool, int]:
    return spend.flushing, spend.epoch


def build_end_users(db: Database, spend: SpendWriter) -> EndUsers:
    """End users (the request's ``user``): their limits and spend, charged and reset by the spend writer."""
    end_users = EndUsers(db, unflushed=spend.unflushed, writer_state=lambda: _writer_state(spend))
    spend.charge_writers[END_USER_KIND] = end_users.write_charge
    spend.resetters.append(end_users.reset_budgets)
    return end_users


def build_key_cache(db: Database, spend: SpendWriter, *, budgets_at_price: bool) -> KeyCache:
    return KeyCache(
        db, unflushed=spend.unflushed, writer_state=lambda: _writer_state(spend), budgets_at_price=budgets_at_price
    )


def build_authenticator(config: ProxyConfig, env: Mapping[str, str], keys: KeyCache) -> Authenticator:
    master_key = config.general_settings.master_key or env.get("LITELLM_MASTER_KEY") or None
    return Authenticator(master_key, keys)
