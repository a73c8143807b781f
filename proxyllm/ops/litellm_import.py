"""``proxyllm import-litellm --from postgresql://...``: bring a LiteLLM proxy's database over.

LiteLLM stores a virtual key as the SHA-256 hex of the key, as proxyllm does, so imported keys keep
working unchanged. Copied: users, teams (with their members and roles), keys, end users (as billing
accounts), shared budgets (applied to the keys and end users that point at them), spend totals, and
models stored in LiteLLM's database (their secrets opened with LiteLLM's salt key and sealed again
with proxyllm's; this needs ``store_model_in_db`` in proxyllm's config).

Idempotent: a row that exists is updated to LiteLLM's values, so the command can run again (after a
last sync, say) without duplicating anything. ``--dry-run`` reads everything and prints the summary
without writing. LiteLLM's database is only read (``litellm_source.py``); this module writes ours.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.database import Database
from proxyllm.db.tables import Key, Team, TeamMember, User
from proxyllm.db.tables_budgets import Budget, EndUser
from proxyllm.ops.litellm_source import (
    ImportError_,
    LiteLLMSource,
    aware,
    bounded_money,
    jsonish,
    limit,
    money,
    open_litellm_secret,
    text,
)

__all__ = ["ImportError_", "Importer", "LiteLLMSource", "Summary"]

if TYPE_CHECKING:
    from proxyllm.ops.model_store import ModelStore

log = logging.getLogger("proxyllm.import")
ROLES = {"proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer", "team", "customer"}


@dataclass
class Summary:
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)

    def lines(self, *, dry_run: bool) -> list[str]:
        verb = "would import" if dry_run else "imported"
        kinds = sorted(set(self.created) | set(self.updated))
        out = [f"{verb} {kind}: {self.created[kind]} new, {self.updated[kind]} updated" for kind in kinds] or [
            f"{verb} nothing: the LiteLLM database has no users, teams, keys or models"
        ]
        out += [f"skipped: {why}" for why in self.skipped]
        return out


class Importer:
    def __init__(self, db: Database, *, salt_key: str | None, model_store: ModelStore | None = None) -> None:
        self.db = db
        self.salt_key = salt_key
        self.model_store = model_store  # proxyllm's (ops.model_store.ModelStore) when store_model_in_db is on

    async def run(self, source: LiteLLMSource, *, dry_run: bool) -> Summary:
        data = await source.read()
        summary = Summary()
        budgets = {b["budget_id"]: b for b in data["LiteLLM_BudgetTable"]}
        async with self.db.session() as session:
            await self._users(session, data["LiteLLM_UserTable"], summary)
            await self._teams(session, data["LiteLLM_TeamTable"], data["LiteLLM_TeamMembership"], summary)
            await self._keys(session, data["LiteLLM_VerificationToken"], budgets, summary)
            await self._budgets(session, data["LiteLLM_BudgetTable"], summary)
            await self._end_users(session, data["LiteLLM_EndUserTable"], set(budgets), summary)
            if dry_run:
                await session.rollback()
        await self._models(data["LiteLLM_ProxyModelTable"], summary, dry_run=dry_run)
        return summary

    @staticmethod
    def _count(summary: Summary, kind: str, created: bool) -> None:
        (summary.created if created else summary.updated)[kind] += 1

    async def _users(self, session: AsyncSession, rows: list[JSONObject], summary: Summary) -> None:
        for row in rows:
            user_id = text(row["user_id"])
            if not user_id:
                continue
            user = await session.get(User, user_id)
            created = user is None
            if user is None:
                user = User(user_id=user_id)
                session.add(user)
            role = row.get("user_role") or "internal_user"
            user.user_email = text(row.get("user_email"))
            user.user_alias = text(row.get("user_alias"))
            user.user_role = role if role in ROLES else "internal_user"
            self._budget_fields(user, row)
            user.metadata_ = jsonish(row.get("metadata")) or {}
            self._count(summary, "users", created)

    async def _teams(
        self, session: AsyncSession, rows: list[JSONObject], memberships: list[JSONObject], summary: Summary
    ) -> None:
        for row in rows:
            team_id = text(row["team_id"])
            if not team_id:
                continue
            team = await session.get(Team, team_id)
            created = team is None
            if team is None:
                team = Team(team_id=team_id)
                session.add(team)
            team.team_alias = text(row.get("team_alias"))
            self._budget_fields(team, row)
            team.blocked = bool(row.get("blocked"))
            team.metadata_ = jsonish(row.get("metadata")) or {}
            self._count(summary, "teams", created)
            await session.flush()
            members: dict[str, str] = {}
            for admin in row.get("admins") or []:
                members[str(admin)] = "admin"
            for member in row.get("members") or []:
                members.setdefault(str(member), "user")
            for entry in jsonish(row.get("members_with_roles")) or []:
                if isinstance(entry, dict) and entry.get("user_id"):
                    members[str(entry["user_id"])] = "admin" if entry.get("role") == "admin" else "user"
            for membership in memberships:
                if membership.get("team_id") == row["team_id"] and membership.get("user_id"):
                    members.setdefault(str(membership["user_id"]), "user")
            for user_id, role in members.items():
                await self._member(session, team_id, text(user_id) or "", role, summary)

    async def _member(self, session: AsyncSession, team_id: str, user_id: str, role: str, summary: Summary) -> None:
        if not user_id:
            return
        if await session.get(User, user_id) is None:
            session.add(User(user_id=user_id))
            await session.flush()
        member = await session.get(TeamMember, (team_id, user_id))
        if member is None:
            session.add(TeamMember(team_id=team_id, user_id=user_id, role=role))
            summary.created["team members"] += 1
        elif member.role != role:
            member.role = role
            summary.updated["team members"] += 1

    async def _keys(
        self, session: AsyncSession, rows: list[JSONObject], budgets: dict[str, JSONObject], summary: Summary
    ) -> None:
        for row in rows:
            token = str(row["token"])
            if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
                summary.skipped.append(f"key {token[:8]}...: its token is not a SHA-256 hex digest")
                continue
            key = await session.get(Key, token)
            created = key is None
            if key is None:
                key = Key(token=token, key_name=text(row.get("key_name"), 64) or f"sk-...{token[-4:]}")
                session.add(key)
            key.key_alias = text(row.get("key_alias"))
            key.user_id = text(row.get("user_id"))
            key.team_id = text(row.get("team_id"))
            key.expires = aware(row.get("expires"))
            budget = budgets.get(row.get("budget_id") or "")
            merged = dict(row)
            if budget is not None:  # a shared budget object: its limits where the key sets none
                for name in ("max_budget", "budget_duration", "budget_reset_at", "tpm_limit", "rpm_limit"):
                    if merged.get(name) is None:
                        merged[name] = budget.get(name)
                if merged.get("max_parallel_requests") is None:
                    merged["max_parallel_requests"] = budget.get("max_parallel_requests")
            self._budget_fields(key, merged)
            key.blocked = bool(row.get("blocked"))
            metadata = jsonish(row.get("metadata")) or {}
            key.metadata_ = metadata if isinstance(metadata, dict) else {}
            tags = key.metadata_.get("tags") if isinstance(key.metadata_, dict) else None
            key.tags = [str(t) for t in tags] if isinstance(tags, list) else []
            if key.user_id and await session.get(User, key.user_id) is None:
                session.add(User(user_id=key.user_id))
            if key.team_id and await session.get(Team, key.team_id) is None:
                summary.skipped.append(f"key {token[:8]}...: team '{key.team_id}' does not exist; imported without it")
                key.team_id = None
            self._count(summary, "keys", created)
            await session.flush()

    async def _budgets(self, session: AsyncSession, rows: list[JSONObject], summary: Summary) -> None:
        """LiteLLM's budget objects, as proxyllm's shared budgets (``/budget/*``)."""
        for row in rows:
            budget_id = text(row.get("budget_id"))
            if not budget_id:
                continue
            budget = await session.get(Budget, budget_id)
            created = budget is None
            if budget is None:
                budget = Budget(budget_id=budget_id)
                session.add(budget)
            budget.max_budget = bounded_money(row.get("max_budget"))
            budget.soft_budget = bounded_money(row.get("soft_budget"))
            budget.max_parallel_requests = limit(row.get("max_parallel_requests"))
            budget.tpm_limit = limit(row.get("tpm_limit"))
            budget.rpm_limit = limit(row.get("rpm_limit"))
            model_max_budget = jsonish(row.get("model_max_budget"))
            budget.model_max_budget = model_max_budget if isinstance(model_max_budget, dict) else {}
            budget.budget_duration = text(row.get("budget_duration"), 16)
            budget.budget_reset_at = aware(row.get("budget_reset_at"))
            budget.created_by = text(row.get("created_by"))
            budget.updated_by = text(row.get("updated_by"))
            self._count(summary, "budgets", created)
        await session.flush()

    async def _end_users(
        self, session: AsyncSession, rows: list[JSONObject], budget_ids: set[str], summary: Summary
    ) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        from proxyllm.db.tables_billing import BillingAccount

        dialect = sqlite if self.db.sqlite else postgresql
        for row in rows:
            end_user = text(row.get("user_id"))
            if not end_user:
                continue
            person = await session.get(EndUser, end_user)
            if person is None:
                person = EndUser(user_id=end_user, metadata_={})
                session.add(person)
            person.alias = text(row.get("alias"))
            person.spend = bounded_money(row.get("spend")) or Decimal(0)
            person.blocked = bool(row.get("blocked"))
            budget_id = row.get("budget_id")
            person.budget_id = budget_id if budget_id in budget_ids else None
            region = row.get("allowed_model_region")
            person.allowed_model_region = region if region in ("eu", "us") else None
            person.default_model = text(row.get("default_model"))
            exists = await session.get(BillingAccount, ("end_user", end_user))
            if exists is None:
                await session.execute(
                    dialect.insert(BillingAccount)
                    .values(
                        account_type="end_user",
                        account_id=end_user,
                        currency="usd",
                        balance=Decimal(0),
                        reserved=Decimal(0),
                        total_topups=Decimal(0),
                        total_spent=money(row.get("spend")) or Decimal(0),
                        low_balance_notified=False,
                    )
                    .on_conflict_do_nothing(index_elements=["account_type", "account_id"])
                )
            self._count(summary, "end users", exists is None)

    async def _models(self, rows: list[JSONObject], summary: Summary, *, dry_run: bool) -> None:
        if not rows:
            return
        if self.model_store is None:
            summary.skipped.append(
                f"{len(rows)} models stored in LiteLLM's database: set store_model_in_db in proxyllm's config "
                "(and LITELLM_SALT_KEY) to import them"
            )
            return
        for row in rows:
            params = jsonish(row.get("litellm_params")) or {}
            if self.salt_key:
                params = {
                    k: open_litellm_secret(v, self.salt_key) if isinstance(v, str) else v for k, v in params.items()
                }
            info = jsonish(row.get("model_info")) or {}
            name = str(row.get("model_name") or "")
            try:
                created = await self.model_store.import_model(
                    model_id=str(row["model_id"]), model_name=name, params=params, info=info, dry_run=dry_run
                )
            except Exception as exc:  # one bad model does not stop the others
                summary.skipped.append(f"model '{name}' ({row.get('model_id')}): {exc}")
                continue
            self._count(summary, "models", created)

    @staticmethod
    def _budget_fields(target: User | Team | Key, row: JSONObject) -> None:
        target.max_budget = money(row.get("max_budget"))
        target.spend = money(row.get("spend")) or Decimal(0)
        target.spend_price = max(target.spend, Decimal(0))  # LiteLLM charged its cost: the price was the cost
        target.budget_duration = text(row.get("budget_duration"), 16)
        target.budget_reset_at = aware(row.get("budget_reset_at"))
        target.models = [str(m) for m in row.get("models") or []]
        target.tpm_limit = limit(row.get("tpm_limit"))
        target.rpm_limit = limit(row.get("rpm_limit"))
        target.max_parallel_requests = limit(row.get("max_parallel_requests"))
