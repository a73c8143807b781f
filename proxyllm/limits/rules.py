"""Which rate and concurrency limits apply to a request: one ``Rule`` per limited scope.

A scope is a key, its user, its team, the request's end user, one model on a key (``model_rpm_limit``
/ ``model_tpm_limit`` in the key's metadata, as LiteLLM stores them) or the whole proxy
(``global_max_parallel_requests``).
Requests are counted per clock minute (a fixed window: at most ``rpm_limit`` requests start within one
minute); tokens are added when a call ends, and a scope that has used its ``tpm_limit`` this minute is
refused until the next; parallel requests are counted from admission to the end of the response.
"""

from __future__ import annotations

from proxyllm.accounts.end_users import END_USER
from proxyllm.accounts.hooks import key_auth
from proxyllm.accounts.ledger import Account
from proxyllm.accounts.records import KeyAuth
from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.router import Router

RPM = "rpm_limit"
TPM = "tpm_limit"
PARALLEL = "max_parallel_requests"
GLOBAL_PARALLEL = "global_max_parallel_requests"


class Rule:
    """The limits of one scope; ``key`` names its counters (shared by every request of the scope)."""

    __slots__ = ("key", "label", "model", "parallel", "rpm", "scope", "tpm")

    def __init__(
        self,
        key: str,
        label: str,
        scope: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        parallel: int | None = None,
        model: str | None = None,
    ) -> None:
        self.key = key
        self.label = label
        self.scope = scope  # key | user | team | end_user | key_model | global (a metric label)
        self.rpm = rpm
        self.tpm = tpm
        self.parallel = parallel
        self.model = model  # for key_model rules: the model the limit is for

    def __repr__(self) -> str:
        return f"Rule({self.key!r}, rpm={self.rpm}, tpm={self.tpm}, parallel={self.parallel})"


def global_rule(limit: int | None) -> Rule | None:
    if limit is None:
        return None
    return Rule("global", "the proxy", "global", parallel=limit)


def account_rule(account: Account, label: str) -> Rule | None:
    rpm, tpm, parallel = account.rpm_limit, account.tpm_limit, account.max_parallel_requests
    if rpm is None and tpm is None and parallel is None:
        return None
    return Rule(f"{account.kind}:{account.id}", label, account.kind, rpm=rpm, tpm=tpm, parallel=parallel)


def rules_for(ctx: RequestContext, router: Router, glob: Rule | None) -> list[Rule]:
    """The rules of this request, cheapest first to check; empty for an unlimited caller."""
    rules = [glob] if glob is not None else []
    end_user = ctx.get(END_USER)  # the request's end user, whoever the caller
    if end_user is not None and (rule := account_rule(end_user, f"end user '{end_user.id}'")) is not None:
        rules.append(rule)
    auth = key_auth(ctx)
    if auth is None:
        return rules
    name = auth.key_alias or auth.key_name
    rule = account_rule(auth.key, f"key '{name}'")
    if rule is not None:
        rules.append(rule)
    if auth.user is not None and (rule := account_rule(auth.user, f"user '{auth.user.id}'")) is not None:
        rules.append(rule)
    if auth.team is not None and (rule := account_rule(auth.team, f"team '{auth.team.id}'")) is not None:
        rules.append(rule)
    meta = auth.metadata
    if meta and ("model_rpm_limit" in meta or "model_tpm_limit" in meta):
        rule = model_rule(ctx, router, auth, meta, name)
        if rule is not None:
            rules.append(rule)
    return rules


def model_rule(ctx: RequestContext, router: Router, auth: KeyAuth, meta: JSONObject, name: str) -> Rule | None:
    """The key's own limits for the model asked for, counted per model group: a limit set on an alias
    also holds when the group is called by its own name (or another alias), and the other way round."""
    group = ctx.group or router.find(ctx.model)
    target = group.name if group is not None else ctx.model
    found: dict[str, tuple[str, int]] = {}  # field -> (the name the limit was set on, value)
    for field in ("model_rpm_limit", "model_tpm_limit"):
        limits = meta.get(field)
        if not isinstance(limits, dict):
            continue
        for model, value in limits.items():
            if not _valid(value) or (field in found and model != ctx.model):
                continue
            if model in (ctx.model, target) or (group is not None and router.find(model) is group):
                found[field] = (model, value)
    if not found:
        return None
    rpm, tpm = found.get("model_rpm_limit"), found.get("model_tpm_limit")
    model = (rpm or tpm or (ctx.model, 0))[0]
    return Rule(
        f"key_model:{auth.token}:{target}",
        f"model '{model}' on key '{name}'",
        "key_model",
        rpm=rpm[1] if rpm else None,
        tpm=tpm[1] if tpm else None,
        model=model,
    )


def _valid(value: JSONValue) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
