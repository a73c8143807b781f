"""Budgets, model access and spend logs as hooks around the gateway call."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from proxyllm.accounts.end_users import END_USER
from proxyllm.accounts.records import KeyAuth
from proxyllm.accounts.writer import SpendWriter
from proxyllm.core.context import Principal, RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.hooks import Hook
from proxyllm.core.pricing import request_price
from proxyllm.core.router import Router

ZERO = Decimal(0)


def key_auth(ctx: RequestContext) -> KeyAuth | None:
    """The caller's key record, for a virtual key (None for the master key or an open proxy)."""
    principal = ctx.principal
    return principal_auth(principal) if principal is not None else None


def principal_auth(principal: Principal) -> KeyAuth | None:
    auth = principal.auth
    return auth if isinstance(auth, KeyAuth) else None


class AccessHook(Hook):
    """Refuses models the caller may not use: the key's, its user's and its team's lists all apply."""

    name = "access"

    def __init__(self, router: Router) -> None:
        self.router = router

    async def before_call(self, ctx: RequestContext) -> None:
        auth = key_auth(ctx)
        if auth is None:
            return
        group = ctx.group
        if group is None:
            if not auth.may_use(ctx.model, None):
                raise access_denied(auth, ctx.model, None)
        elif not auth.may_use(ctx.model, group.name, group.access_groups):
            raise access_denied(auth, ctx.model, group.name, group.access_groups)
        self._check_request_fallbacks(ctx, auth)

    def _check_request_fallbacks(self, ctx: RequestContext, auth: KeyAuth) -> None:
        """Fallbacks named in the request are models too: a key may not reach others through them.

        (Fallbacks in the config are the operator's choice and are not checked.)"""
        options = ctx.options or {}
        names = [
            *(ctx.request_fallbacks or []),
            *(options.get("context_window_fallbacks") or []),
            *(options.get("content_policy_fallbacks") or []),
        ]
        for name in names:
            target = self.router.find(name) if isinstance(name, str) else None
            if not isinstance(name, str):
                raise invalid_request("fallback models must be model names", param="fallbacks")
            groups = target.access_groups if target else frozenset()
            if not auth.may_use(name, target.name if target else None, groups):
                error = access_denied(auth, name, target.name if target else None, groups)
                error.param = "fallbacks"
                raise error


def access_denied(
    auth: KeyAuth, model: str, group: str | None, access_groups: frozenset[str] = frozenset()
) -> ProxyError:
    """LiteLLM's answer (401, ``key_model_access_denied`` / ``team_...`` / ``user_...``), naming the
    models the key may really use: its own list, its user's and its team's, intersected."""
    refusing = auth.refusing_account(model, group, access_groups) or "key"
    models = allowed(auth)
    return ProxyError(
        ErrorKind.MODEL_ACCESS,
        f"{refusing} not allowed to access model. This {refusing} can only access models={models!r}. "
        f"Tried to access {model}",
        param="model",
        error_type=f"{refusing}_model_access_denied",
    )


def allowed(auth: KeyAuth) -> list[str]:
    """The models a key may use (key, user and team lists intersected); empty when none restricts."""
    return auth.allowed_models() or []


class SpendLogHook(Hook):
    """One spend-log row per request, whatever its outcome."""

    name = "spend_logs"

    def __init__(self, writer: SpendWriter) -> None:
        self.writer = writer

    async def after_call(self, ctx: RequestContext) -> None:
        self.writer.add_row(spend_row(ctx))


def spend_row(ctx: RequestContext) -> dict[str, object]:
    principal = ctx.principal
    dep = ctx.deployment
    usage = ctx.usage
    prompt = usage.prompt_tokens if usage else 0
    completion = usage.completion_tokens if usage else 0
    ttft = None
    if ctx.first_chunk_at is not None:
        ttft = int((ctx.first_chunk_at - ctx.started) * 1000)
    account = ctx.get(END_USER)
    end_user = account.id if account is not None else ctx.body.get("user")
    return {
        "request_id": ctx.request_id,
        "api_key": principal.key_hash if principal else None,
        "key_alias": principal.key_alias if principal else None,
        "user_id": principal.user_id if principal else None,
        "team_id": principal.team_id if principal else None,
        "end_user": end_user if isinstance(end_user, str) else None,
        "call_type": ctx.operation.value,
        "model_group": ctx.model_group,
        "model": f"{dep.provider.name}/{dep.upstream_model}" if dep else None,
        "model_id": dep.id if dep else None,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "spend": ctx.cost or ZERO,  # LiteLLM's field: the operator's cost
        "price": request_price(ctx),  # what the customer is charged (billing/prices.py)
        "start_time": datetime.fromtimestamp(ctx.started_wall, UTC),
        "end_time": datetime.now(UTC),
        "ttft_ms": ttft,
        "status": ctx.outcome,
        "error_class": ctx.error.kind.name.lower() if ctx.error else None,
        "cache_hit": ctx.cache_hit,
        "stream": ctx.stream,
    }


def visible(router: Router, caller: Principal, name: str) -> bool:
    """Whether the caller may use the model: the master key every one, a virtual key what its own,
    its user's and its team's lists allow (names, model groups, access groups)."""
    auth = caller.auth
    if auth is None:
        return True
    group = router.find(name)
    if group is None:
        return False
    return bool(auth.may_use(name, group.name, group.access_groups))
