"""What the router knows about one deployment right now: cooldown, recent failures, usage, latency.

One small object per deployment, mutated in place on the hot path (no allocation per request).
Usage is counted per wall-clock minute (the same minute in every replica): ``pending_*`` is this
process's count not yet written to shared state, ``synced_*`` everyone's count as of the last sync.
"""

from __future__ import annotations

from decimal import Decimal

from proxyllm.core.deployment import Deployment

EWMA_WEIGHT = 0.3  # weight of the newest latency sample
FAIL_WINDOW = 60.0


def minute_of(wall: float) -> int:
    return int(wall // 60)


class DeploymentStats:
    __slots__ = (
        "cool_reason",
        "cool_until",
        "cost",
        "dep",
        "fails",
        "fails_since",
        "latency",
        "minute",
        "pending_requests",
        "pending_tokens",
        "synced_requests",
        "synced_tokens",
        "ttft",
    )

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.cool_until = 0.0  # monotonic seconds; 0 when not cooling
        self.cool_reason = ""
        self.fails = 0
        self.fails_since = 0.0
        self.minute = 0
        self.pending_requests = 0
        self.pending_tokens = 0
        self.synced_requests = 0
        self.synced_tokens = 0
        self.latency: float | None = None  # seconds per whole response (EWMA)
        self.ttft: float | None = None  # seconds to the first streamed event (EWMA)
        self.cost: Decimal = (dep.input_cost_per_token or Decimal(0)) + (dep.output_cost_per_token or Decimal(0))

    def roll(self, minute: int) -> None:
        if minute != self.minute:
            self.minute = minute
            self.pending_requests = self.pending_tokens = 0
            self.synced_requests = self.synced_tokens = 0

    def requests_in(self, minute: int) -> int:
        self.roll(minute)
        return self.synced_requests + self.pending_requests

    def tokens_in(self, minute: int) -> int:
        self.roll(minute)
        return self.synced_tokens + self.pending_tokens

    def at_limit(self, minute: int) -> bool:
        dep = self.dep
        if dep.rpm is not None and self.requests_in(minute) >= dep.rpm:
            return True
        return dep.tpm is not None and self.tokens_in(minute) >= dep.tpm

    def count_failure(self, now: float) -> int:
        """Failures within the current one-minute window, this one included."""
        if now - self.fails_since > FAIL_WINDOW:
            self.fails, self.fails_since = 0, now
        self.fails += 1
        return self.fails

    def observe(self, seconds: float, *, stream: bool) -> None:
        if stream:
            self.ttft = seconds if self.ttft is None else self.ttft + EWMA_WEIGHT * (seconds - self.ttft)
        else:
            self.latency = seconds if self.latency is None else self.latency + EWMA_WEIGHT * (seconds - self.latency)
