"""After a model group failed: which groups to try next, and the one error when every attempt failed."""

from __future__ import annotations

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONValue
from proxyllm.core.routing.groups import ModelGroup
from proxyllm.core.routing.policy import RouterPolicy

# The request itself is at fault: another model would refuse it too.
NO_FALLBACK_KINDS = frozenset(
    {ErrorKind.INVALID_REQUEST, ErrorKind.PAYLOAD_TOO_LARGE, ErrorKind.BUDGET_EXCEEDED, ErrorKind.INTERNAL}
)
SPECIFIC_FALLBACKS = {
    ErrorKind.CONTEXT_WINDOW_EXCEEDED: "context_window_fallbacks",
    ErrorKind.CONTENT_POLICY: "content_policy_fallbacks",
}


def fallbacks_after(policy: RouterPolicy, ctx: RequestContext, group: ModelGroup, err: ProxyError) -> list[str]:
    """The model groups to try after ``group`` failed with ``err``, in order.

    Context-window and content-policy errors use their own lists when any are configured (as in
    LiteLLM); other failures use the request's ``fallbacks``, else the group's, else
    ``default_fallbacks``.
    """
    if err.kind in NO_FALLBACK_KINDS:
        return []
    specific = SPECIFIC_FALLBACKS.get(err.kind)
    if specific is not None:
        asked = (ctx.options or {}).get(specific)
        if asked is not None:
            return names(asked, specific)
        configured: dict[str, list[str]] = getattr(policy, specific)
        if configured:
            return configured_for(configured, ctx, group)
    if ctx.request_fallbacks is not None:
        return ctx.request_fallbacks
    return configured_for(policy.fallbacks, ctx, group) or policy.default_fallbacks


def configured_for(mapping: dict[str, list[str]], ctx: RequestContext, group: ModelGroup) -> list[str]:
    found = mapping.get(group.name) or mapping.get(ctx.model)
    if found is None and group.pattern is not None:
        found = mapping.get(group.pattern)
    return found or []


def final_error(ctx: RequestContext, last: ProxyError) -> ProxyError:
    """``last`` itself after one attempt; otherwise one error that lists every attempt, in words and in
    ``error.attempts`` (deployment, model, kind, status, message of each).

    The cause is reported, not its consequence: when every attempt timed out and what is left is "no
    deployment available" (they are cooling down after those timeouts), the answer is a 504."""
    attempts = ctx.attempts
    if not attempts or (len(attempts) == 1 and attempts[0][1] is last):
        return last
    lines = "; ".join(
        f"[{i + 1}] {dep.model_name} via {dep.provider.name}/{dep.upstream_model} "
        f"(id {dep.id}): {err.status} {err.message}"
        for i, (dep, err) in enumerate(attempts)
    )
    if attempts[-1][1] is not last:
        lines += f"; then: {last.message}"
    kind, status, code = last.kind, last.status, last.code
    timed_out = all(err.kind is ErrorKind.TIMEOUT for _, err in attempts)
    if timed_out and last.kind in (ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT):
        kind, status, code = ErrorKind.TIMEOUT, ErrorKind.TIMEOUT.status, "timeout"
    details = {
        "attempts": [
            {
                "model_group": dep.model_name,
                "deployment": dep.id,
                "model": f"{dep.provider.name}/{dep.upstream_model}",
                "kind": err.kind.value[0],
                "status": err.status,
                "message": err.message,
            }
            for dep, err in attempts
        ]
    }
    count = f"{len(attempts)} attempt{'s' if len(attempts) > 1 else ''}"
    prefix = f"timed out ({count})" if timed_out else f"all {count} failed"
    return ProxyError(
        kind,
        f"{prefix}: {lines}",
        status=status,
        retry_after=last.retry_after,
        code=code,
        details=details,
    )


def names(value: JSONValue, param: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_request(f"'{param}' must be a list of model names", param=param)
    return value
