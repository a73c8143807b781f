"""What the hot path knows about a key once it is looked up: the key and its user and team accounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from proxyllm.accounts.ledger import Account
from proxyllm.core.jsontypes import JSONObject

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
    metadata: JSONObject = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    model_aliases: dict[str, str] = field(default_factory=dict)  # its team's: alias -> model group

    @property
    def accounts(self) -> list[Account]:
        return [a for a in (self.key, self.user, self.team) if a is not None]

    def restrictions(self) -> list[tuple[str, list[str]]]:
        """The model lists that apply, by whose they are: the key's, its user's and its team's (an empty
        list, or one with "*", allows every model)."""
        return [
            (a.kind, a.models)
            for a in (self.key, self.user, self.team)
            if a is not None and a.models and ALL_MODELS.isdisjoint(a.models)
        ]

    def refusing_account(
        self, model: str, group: str | None, access_groups: frozenset[str] = frozenset()
    ) -> str | None:
        """Which list refuses the model: "key", "user" or "team" (None when every list allows it). A
        list allows a model by its name, its model group's name or one of its access groups."""
        for kind, models in self.restrictions():
            if model in models or (group is not None and group in models):
                continue
            if access_groups and not access_groups.isdisjoint(models):
                continue
            return kind
        return None

    def may_use(self, model: str, group: str | None, access_groups: frozenset[str] = frozenset()) -> bool:
        return self.refusing_account(model, group, access_groups) is None

    def allowed_models(self) -> list[str] | None:
        """The intersection of the lists that apply (names as written there); None when none restricts."""
        lists = [models for _, models in self.restrictions()]
        if not lists:
            return None
        return [m for m in lists[0] if all(m in other for other in lists[1:])]
