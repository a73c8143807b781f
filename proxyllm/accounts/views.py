"""Rows -> JSON for the admin API. Money goes out as JSON numbers, as LiteLLM's API does."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from proxyllm.accounts.store import aware
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Key, SpendLog, Team, TeamMember, User


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def when(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None


def _limits(row: Key | User | Team) -> JSONObject:
    return {
        "max_budget": money(row.max_budget),
        "spend": money(row.spend) or 0.0,  # the operator's cost (LiteLLM's field)
        "spend_price": money(row.spend_price) or 0.0,  # what the account's requests were charged (the price)
        "budget_duration": row.budget_duration,
        "budget_reset_at": when(row.budget_reset_at),
        "models": list(row.models or []),
        "tpm_limit": row.tpm_limit,
        "rpm_limit": row.rpm_limit,
        "max_parallel_requests": row.max_parallel_requests,
        "metadata": dict(row.metadata_ or {}),
        "blocked": bool(row.blocked),
    }


def key_view(key: Key) -> JSONObject:
    return {
        "token": key.token,
        "token_id": key.token,  # LiteLLM's name for the key's hash in /key/generate answers
        "key_name": key.key_name,
        "key_alias": key.key_alias,
        "user_id": key.user_id,
        "team_id": key.team_id,
        "expires": when(key.expires),
        "tags": list(key.tags or []),
        "aliases": dict((key.metadata_ or {}).get("aliases") or {}),
        "created_at": when(key.created_at),
        "updated_at": when(key.updated_at),
        **_limits(key),
    }


def user_view(user: User) -> JSONObject:
    return {
        "user_id": user.user_id,
        "user_email": user.user_email,
        "user_alias": user.user_alias,
        "user_role": user.user_role,
        "stripe_customer_id": user.stripe_customer_id,
        "created_at": when(user.created_at),
        **_limits(user),
    }


def team_view(team: Team) -> JSONObject:
    meta = team.metadata_ or {}
    return {
        "team_id": team.team_id,
        "team_alias": team.team_alias,
        "stripe_customer_id": team.stripe_customer_id,
        "created_at": when(team.created_at),
        **_limits(team),
        # LiteLLM's team fields proxyllm keeps in the team's metadata
        "model_aliases": dict(meta.get("model_aliases") or {}),
        "tags": list(meta.get("tags") or []),
        "team_member_permissions": list(meta.get("team_member_permissions") or []),
        "organization_id": meta.get("organization_id"),
    }


def member_view(member: TeamMember, email: str | None) -> JSONObject:
    return {"user_id": member.user_id, "user_email": email, "role": member.role}


def spend_view(row: SpendLog) -> JSONObject:
    return {
        "request_id": row.request_id,
        "api_key": row.api_key,
        "key_alias": row.key_alias,
        "user": row.user_id,
        "team_id": row.team_id,
        "end_user": row.end_user,
        "call_type": row.call_type,
        "model_group": row.model_group,
        "model": row.model,
        "model_id": row.model_id,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.total_tokens,
        "spend": money(row.spend),  # the operator's cost (LiteLLM's field)
        "price": money(row.price if row.price is not None else row.spend),  # what the customer was charged
        "startTime": when(row.start_time),
        "endTime": when(row.end_time),
        "ttft_ms": row.ttft_ms,
        "status": row.status,
        "error_class": row.error_class,
        "cache_hit": row.cache_hit,
        "stream": row.stream,
    }
