"""What the router is told to do — retries, fallbacks, cooldowns, strategy — built once from the config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxyllm.core.errors import ErrorKind

# LiteLLM's retry_policy names and the error kinds each one covers.
RETRY_POLICY_KINDS: dict[str, tuple[ErrorKind, ...]] = {
    "BadRequestErrorRetries": (ErrorKind.INVALID_REQUEST, ErrorKind.PAYLOAD_TOO_LARGE),
    "AuthenticationErrorRetries": (ErrorKind.AUTHENTICATION, ErrorKind.PERMISSION),
    "TimeoutErrorRetries": (ErrorKind.TIMEOUT,),
    "RateLimitErrorRetries": (ErrorKind.RATE_LIMIT,),
    "ContentPolicyViolationErrorRetries": (ErrorKind.CONTENT_POLICY,),
    "ContextWindowExceededErrorRetries": (ErrorKind.CONTEXT_WINDOW_EXCEEDED,),
    "NotFoundErrorRetries": (ErrorKind.NOT_FOUND,),
    "InternalServerErrorRetries": (ErrorKind.UPSTREAM, ErrorKind.UPSTREAM_CONNECT, ErrorKind.UNAVAILABLE),
}


def parse_retry_policy(raw: Mapping[str, int]) -> dict[ErrorKind, int]:
    """``{"RateLimitErrorRetries": 5, ...}`` -> retries per error kind; unknown names are an error."""
    policy: dict[ErrorKind, int] = {}
    for name, retries in raw.items():
        kinds = RETRY_POLICY_KINDS.get(name)
        if kinds is None:
            raise ValueError(f"retry_policy: unknown entry {name!r} (known: {', '.join(RETRY_POLICY_KINDS)})")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retry_policy.{name} must be a whole number >= 0")
        for kind in kinds:
            policy[kind] = retries
    return policy


@dataclass(slots=True)
class RouterPolicy:
    num_retries: int = 2
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    context_window_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    content_policy_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    default_fallbacks: list[str] = field(default_factory=list)
    max_fallbacks: int = 5
    aliases: dict[str, str] = field(default_factory=dict)
    retry_policy: dict[ErrorKind, int] = field(default_factory=dict)
    max_retry_wait: float = 10.0  # a Retry-After longer than this is not waited for
    backoff_base: float = 0.1
    routing_strategy: str = "simple-shuffle"
    # A deployment with this many failures within a minute cools down for cooldown_time seconds.
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    disable_cooldowns: bool = False
    exploration: float = 0.05  # latency-based: share of requests sent to a random deployment
    latency_buffer: float = 0.0  # latency-based: pick at random among those within this fraction of the best
    pre_call_checks: bool = False  # skip deployments whose max_input_tokens the prompt exceeds
    tag_filtering: bool = False  # only deployments whose tags meet the request's (LiteLLM's tag routing)
    sync_interval: float = 0.2  # seconds between writes of usage counters to shared state

    def retries_for(self, kind: ErrorKind, default: int) -> int:
        configured = self.retry_policy.get(kind)
        if configured is not None:
            return configured
        return default if kind.retryable else 0
