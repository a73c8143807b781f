"""After an attempt failed: does it count against the deployment, may the request retry, and when."""

from __future__ import annotations

import random

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.routing.cooldowns import COUNTED_KINDS
from proxyllm.core.routing.policy import RouterPolicy

MAX_REQUEST_RETRIES = 10  # a request's own num_retries is capped here


def counts_against(ctx: RequestContext, dep: Deployment, err: ProxyError) -> bool:
    """Whether ``err`` says something about ``dep`` (and so counts toward its cooldown)."""
    if err.kind not in COUNTED_KINDS:
        return False
    # A timeout the client asked for, shorter than the deployment's own, says nothing about it.
    return not (err.kind is ErrorKind.TIMEOUT and ctx.timeout is not None and ctx.timeout < dep.timeout)


def retry_limit(policy: RouterPolicy, ctx: RequestContext, dep: Deployment, err: ProxyError) -> int:
    default = dep.max_retries if dep.max_retries is not None else policy.num_retries
    options = ctx.options
    if options:
        asked = options.get("num_retries")
        if type(asked) is int and asked >= 0:
            default = min(asked, MAX_REQUEST_RETRIES)
    return policy.retries_for(err.kind, default)


def delay(policy: RouterPolicy, rng: random.Random, n: int, err: ProxyError, *, other_left: bool) -> float | None:
    """Seconds to wait before retry ``n + 1``; None when waiting is not worth it."""
    if other_left:
        return 0.0  # another deployment need not wait for this one's Retry-After
    backoff = policy.backoff_base * (2.0**n) * (0.5 + rng.random())
    if err.retry_after is not None:
        if err.retry_after > policy.max_retry_wait:
            return None
        return err.retry_after + backoff * 0.1
    return backoff
