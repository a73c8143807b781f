"""What the hot path knows about a key once it is looked up: the key and its user and team accounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from proxyllm.accounts.ledger import Account

ALL_MODELS = frozenset({"*", "all-proxy-models"})


@dataclass(slots=True, eq=False)
class KeyAuth:
    token: str
    key_name: str
    key_alias: str | None
    expires: datetime | None
    deleted: bool
    key: Account
    user: Account | None = None
    team: Account | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)

    @property
    def accounts(self) -> list[Account]:
        return [a for a in (self.key, self.user, self.team) if a is not None]

    def may_use(self, model: str, group: str | None) -> bool:
        """A key may use a model when neither it nor its team restricts models, or both list it."""
        for account in (self.key, self.team):
            if account is None or not account.models or not ALL_MODELS.isdisjoint(account.models):
                continue
            if model not in account.models and (group is None or group not in account.models):
                return False
        return True
