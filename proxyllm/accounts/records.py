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

    def restrictions(self) -> list[list[str]]:
        """The model lists that apply: the key's, its user's and its team's (an empty or "*" list allows all)."""
        return [
            a.models
            for a in (self.key, self.user, self.team)
            if a is not None and a.models and ALL_MODELS.isdisjoint(a.models)
        ]

    def may_use(self, model: str, group: str | None) -> bool:
        """A key may use a model that every list of its key, user and team names (by name or model group)."""
        for models in self.restrictions():
            if model not in models and (group is None or group not in models):
                return False
        return True

    def refusing_account(self, model: str, group: str | None) -> str | None:
        """Which list refuses the model: "key", "user" or "team" (None when all allow it)."""
        for account in (self.key, self.user, self.team):
            if account is None or not account.models or not ALL_MODELS.isdisjoint(account.models):
                continue
            if model not in account.models and (group is None or group not in account.models):
                return account.kind
        return None

    def allowed_models(self) -> list[str] | None:
        """The intersection of the lists that apply; None when none restricts."""
        lists = self.restrictions()
        if not lists:
            return None
        return [m for m in lists[0] if all(m in other for other in lists[1:])]
