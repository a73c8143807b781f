"""The rate-limit hook: admits or refuses a request (429), sets x-ratelimit-* headers, frees its slots.

Runs after authentication and before budgets. A caller with no limits (the master key, a key without
rpm/tpm/parallel limits, no global limit) costs a few attribute reads. With Redis, a caller that also
has a budget leaves its rules to the budget hook, whose one Redis script checks both (limits first).
The slots a request holds are freed in ``after_call``, which the gateway runs for every admitted
request whatever its outcome: success, upstream error, timeout or the client's disconnect.
"""

from __future__ import annotations

from collections.abc import Callable

from proxyllm.accounts.hooks import key_auth
from proxyllm.core.context import RequestContext, Slot
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.hooks import Hook
from proxyllm.core.router import Router
from proxyllm.limits.local import Grant, Refusal, reset_text
from proxyllm.limits.rules import PARALLEL, RPM, TPM, Rule, global_rule, rules_for
from proxyllm.limits.shared import SharedLimiter

GRANT: Slot[Grant] = Slot("rate_limit")
# rules left for the budget reservation's script (one Redis round trip; limits/budgets.py)
DEFERRED: Slot[list[Rule]] = Slot("rate_limit_deferred")
Rejected = Callable[[str, str], None]  # (scope, limit) of a refusal, for metrics


class RateLimitHook(Hook):
    name = "rate_limits"

    def __init__(
        self,
        limiter: SharedLimiter,
        router: Router,
        *,
        global_max_parallel_requests: int | None = None,
        on_reject: Rejected | None = None,
    ) -> None:
        self.limiter = limiter
        self.router = router
        self.global_rule = global_rule(global_max_parallel_requests)
        self.on_reject = on_reject
        self.defer_to_budgets = False  # set by limits.budgets.SharedBudgets

    async def before_call(self, ctx: RequestContext) -> None:
        rules = rules_for(ctx, self.router, self.global_rule)
        if not rules:
            return
        if self.defer_to_budgets and self.limiter.shared and budgeted(ctx):
            ctx.put(DEFERRED, rules)  # checked by the budget hook's Redis script, in the same round trip
            return
        try:
            grant = await self.limiter.acquire(rules, ctx.request_id)
        except Refusal as refusal:
            raise self.refuse(refusal) from None
        if grant is not None:
            ctx.put(GRANT, grant)
            ctx.response_headers.update(grant_headers(grant))

    async def stop(self) -> None:
        await self.limiter.flush()  # budget settlements still gathered for Redis

    def refuse(self, refusal: Refusal) -> ProxyError:
        if self.on_reject is not None:
            self.on_reject(refusal.rule.scope, refusal.limit)
        return refused(refusal)

    async def after_call(self, ctx: RequestContext) -> None:
        grant = ctx.get(GRANT)
        if grant is None:
            return
        usage = ctx.usage
        tokens = usage.total_tokens if usage is not None and not ctx.cache_hit else 0
        await self.limiter.release(grant, tokens)


def budgeted(ctx: RequestContext) -> bool:
    """Whether the caller has an account with a budget (then a budget reservation follows)."""
    auth = key_auth(ctx)
    return auth is not None and any(a.max_budget is not None for a in auth.accounts)


def header_safe(name: str) -> str:
    """A model name as part of a header name (token characters only)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "-" for c in name)


UNITS = {RPM: "requests per minute", TPM: "tokens per minute", PARALLEL: "parallel requests"}


def refused(refusal: Refusal) -> ProxyError:
    rule, limit = refusal.rule, refusal.limit
    value = {RPM: rule.rpm, TPM: rule.tpm, PARALLEL: rule.parallel}[limit]
    name = "global_max_parallel_requests" if rule.scope == "global" else limit
    if rule.scope == "key_model":
        name = f"model_{limit}"
    if limit == PARALLEL:
        detail = f"{refusal.used} requests are in flight; try again when one ends"
        headers = {
            "x-ratelimit-limit-parallel-requests": str(value),
            "x-ratelimit-remaining-parallel-requests": "0",
        }
    else:
        reset = reset_text(refusal.reset)
        used = "requests" if limit == RPM else "tokens"
        detail = f"{refusal.used} {used} used this minute; resets in {reset}"
        headers = {
            f"x-ratelimit-limit-{used}": str(value),
            f"x-ratelimit-remaining-{used}": "0",
            f"x-ratelimit-reset-{used}": reset,
        }
    return ProxyError(
        ErrorKind.RATE_LIMIT,
        f"rate limit exceeded for {rule.label}: {name} is {value} {UNITS[limit]} ({detail})",
        code="rate_limit_exceeded",
        retry_after=refusal.reset,
        headers=headers,
    )


def grant_headers(grant: Grant) -> dict[str, str]:
    """The tightest limit of each kind that applied, after this request was counted (OpenAI's names)."""
    headers: dict[str, str] = {}
    requests: tuple[int, int] | None = None  # (remaining, limit)
    tokens: tuple[int, int] | None = None
    parallel: tuple[int, int] | None = None
    for rule, (used, used_tokens, in_flight) in zip(grant.rules, grant.usage, strict=True):
        if rule.rpm is not None:
            left = max(0, rule.rpm - used)
            if requests is None or left < requests[0]:
                requests = (left, rule.rpm)
            if rule.model is not None:
                headers[f"x-litellm-key-remaining-requests-{header_safe(rule.model)}"] = str(left)
        if rule.tpm is not None:
            left = max(0, rule.tpm - used_tokens)
            if tokens is None or left < tokens[0]:
                tokens = (left, rule.tpm)
            if rule.model is not None:
                headers[f"x-litellm-key-remaining-tokens-{header_safe(rule.model)}"] = str(left)
        if rule.parallel is not None:
            left = max(0, rule.parallel - in_flight)
            if parallel is None or left < parallel[0]:
                parallel = (left, rule.parallel)
    reset = reset_text(grant.reset)
    if requests is not None:
        headers["x-ratelimit-limit-requests"] = str(requests[1])
        headers["x-ratelimit-remaining-requests"] = str(requests[0])
        headers["x-ratelimit-reset-requests"] = reset
    if tokens is not None:
        headers["x-ratelimit-limit-tokens"] = str(tokens[1])
        headers["x-ratelimit-remaining-tokens"] = str(tokens[0])
        headers["x-ratelimit-reset-tokens"] = reset
    if parallel is not None:
        headers["x-ratelimit-limit-parallel-requests"] = str(parallel[1])
        headers["x-ratelimit-remaining-parallel-requests"] = str(parallel[0])
    return headers
