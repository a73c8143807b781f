"""Which deployments of a model group may take this attempt, and the error when none may.

A deployment is left out while it cools down, while it is at its rpm/tpm limit for this minute, when
the prompt is longer than it accepts (with ``pre_call_checks``), when the group mixes operations and
its provider does not serve this one, and — with ``tag_filtering`` — when it shares no tag with the
request. A retry prefers deployments not tried yet.
"""

from __future__ import annotations

import math

from proxyllm.core import clock
from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.routing.cooldowns import RATE_LIMITED, Cooldowns
from proxyllm.core.routing.groups import ModelGroup, estimate_prompt_tokens, max_input_tokens
from proxyllm.core.routing.policy import RouterPolicy
from proxyllm.core.routing.stats import DeploymentStats, minute_of


def candidates(
    policy: RouterPolicy, cooldowns: Cooldowns, ctx: RequestContext, group: ModelGroup, tried: set[str] | None
) -> list[DeploymentStats]:
    now = clock.monotonic()
    wall = clock.time()
    minute = minute_of(wall)
    prompt = estimate_prompt_tokens(ctx.body) if group.input_limited and policy.pre_call_checks else None
    available: list[DeploymentStats] = []
    cooling: list[DeploymentStats] = []
    limited = too_small = 0
    members = group.stats
    if group.tagged and policy.tag_filtering:
        members = tagged(ctx, group)
    if group.mixed_operations:  # only the deployments whose provider serves this operation
        members = [s for s in members if ctx.operation in s.dep.provider.operations]
    for stats in members:
        if cooldowns.cooling(stats, now):
            cooling.append(stats)
        elif group.limited and stats.at_limit(minute):
            limited += 1
        elif prompt is not None and prompt > (max_input_tokens(stats.dep) or math.inf):
            too_small += 1
        else:
            available.append(stats)
    if not available:
        raise none_available(group, cooling, limited, too_small, prompt, 60 - wall % 60, now)
    if tried:
        fresh = [s for s in available if s.dep.id not in tried]
        if fresh:
            return fresh
    return available


def tagged(ctx: RequestContext, group: ModelGroup) -> list[DeploymentStats]:
    """LiteLLM's tag routing: the deployments sharing a tag with the request (its metadata.tags and
    its key's tags); else those tagged "default"; a request with no tags may use any deployment."""
    tags = ctx.tags
    principal = ctx.principal
    auth = principal.auth if principal is not None else None
    if auth is not None and auth.tags:
        tags = tags | frozenset(auth.tags)
    if tags:
        matching = [s for s in group.stats if not s.dep.tags.isdisjoint(tags)]
        if matching:
            return matching
    defaults = [s for s in group.stats if "default" in s.dep.tags]
    if defaults:
        return defaults
    if not tags:
        return group.stats
    raise ProxyError(
        ErrorKind.INVALID_REQUEST,
        f"no deployment of model '{group.name}' has any of the tags {sorted(tags)}, and none is tagged 'default'",
        param="metadata.tags",
        code="no_deployment_for_tags",
    )


def none_available(
    group: ModelGroup,
    cooling: list[DeploymentStats],
    limited: int,
    too_small: int,
    prompt: int | None,
    next_minute: float,
    now: float,
) -> ProxyError:
    total = len(group.stats)
    if too_small == total:
        return ProxyError(
            ErrorKind.CONTEXT_WINDOW_EXCEEDED,
            f"the prompt (about {prompt} tokens) is longer than any deployment of model '{group.name}' accepts",
            code="context_length_exceeded",
        )
    waits = [s.cool_until - now for s in cooling] + ([next_minute] if limited else [])
    retry_after = max(0.1, min(waits)) if waits else None
    if not cooling:
        return ProxyError(
            ErrorKind.RATE_LIMIT,
            f"every deployment of model '{group.name}' is at its rpm/tpm limit for this minute; "
            f"retry in {math.ceil(next_minute)}s",
            retry_after=retry_after,
        )
    rate_limited = all(s.cool_reason == RATE_LIMITED for s in cooling)
    return ProxyError(
        ErrorKind.RATE_LIMIT if rate_limited else ErrorKind.UNAVAILABLE,
        f"no deployment of model '{group.name}' is available: {len(cooling)} of {total} cooling down after "
        f"{'rate limits' if rate_limited else 'failures'}"
        + (f", {limited} at their rpm/tpm limit" if limited else "")
        + f"; the next one is back in {math.ceil(retry_after or 0)}s",
        retry_after=retry_after,
        code="no_deployment_available",
    )
