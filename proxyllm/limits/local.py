"""Rate and concurrency limits counted in this process: O(1) dictionary work, no await.

Admission checks every rule of a request before counting it on any (all or nothing), with no await in
between, so concurrent requests of one process can never pass a limit together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from proxyllm.core.clock import time as wall_time
from proxyllm.limits.rules import PARALLEL, RPM, TPM, Rule

if TYPE_CHECKING:
    from proxyllm.limits.shared import BudgetAsk

WINDOW = 60  # seconds: limits are per clock minute
SWEEP_AT = 10_000  # idle counters are dropped once this many exist


class Refusal(Exception):
    """A rule refused the request: which one, which of its limits, how far it is used, when it resets."""

    def __init__(self, rule: Rule, limit: str, used: int, reset: float) -> None:
        super().__init__(f"{rule.label}: {limit}")
        self.rule = rule
        self.limit = limit  # RPM | TPM | PARALLEL
        self.used = used
        self.reset = reset  # seconds until the window turns (parallel: until a slot is likely free)


class Counter:
    __slots__ = ("in_flight", "requests", "tokens", "window")

    def __init__(self) -> None:
        self.window = -1
        self.requests = 0
        self.tokens = 0
        self.in_flight = 0


class Grant:
    """An admitted request: what it counted where, and the usage it saw (for the response headers)."""

    __slots__ = ("budget", "counters", "request_id", "reset", "rules", "shared", "usage")

    def __init__(
        self,
        rules: Sequence[Rule],
        usage: list[tuple[int, int, int]],
        reset: float,
        *,
        counters: list[Counter] | None = None,
        shared: bool = False,
        request_id: str = "",
    ) -> None:
        self.rules = rules
        self.usage = usage  # per rule: requests this minute (this one included), tokens this minute, in flight
        self.reset = reset
        self.counters = counters  # the local counters, for the release
        self.shared = shared  # counted in Redis
        self.request_id = request_id
        self.budget: BudgetAsk | None = None  # the budget reserved in Redis with this admission


class LocalLimiter:
    def __init__(self, clock: Callable[[], float] = wall_time) -> None:
        self.clock = clock
        self.counters: dict[str, Counter] = {}

    def acquire(self, rules: Sequence[Rule]) -> Grant:
        now = self.clock()
        window = int(now // WINDOW)
        reset = WINDOW - now % WINDOW
        counters = self.counters
        held: list[Counter] = []
        for rule in rules:
            counter = counters.get(rule.key)
            if counter is None:
                if len(counters) >= SWEEP_AT:
                    self._sweep(window)
                    counters = self.counters
                counter = counters[rule.key] = Counter()
            if counter.window != window:
                counter.window, counter.requests, counter.tokens = window, 0, 0
            if rule.rpm is not None and counter.requests >= rule.rpm:
                raise Refusal(rule, RPM, counter.requests, reset)
            if rule.tpm is not None and counter.tokens >= rule.tpm:
                raise Refusal(rule, TPM, counter.tokens, reset)
            if rule.parallel is not None and counter.in_flight >= rule.parallel:
                raise Refusal(rule, PARALLEL, counter.in_flight, 1.0)
            held.append(counter)
        usage = []
        for counter in held:
            counter.requests += 1
            counter.in_flight += 1
            usage.append((counter.requests, counter.tokens, counter.in_flight))
        return Grant(rules, usage, reset, counters=held)

    def release(self, grant: Grant, tokens: int) -> None:
        """The request ended: free its parallel slots and count its tokens in the current minute."""
        if grant.counters is None:
            return
        window = int(self.clock() // WINDOW) if tokens else 0
        for counter in grant.counters:
            counter.in_flight -= 1
            if tokens:
                if counter.window != window:
                    counter.window, counter.requests, counter.tokens = window, 0, 0
                counter.tokens += tokens
        grant.counters = None  # released once, whatever happens next

    def _sweep(self, window: int) -> None:
        self.counters = {k: c for k, c in self.counters.items() if c.in_flight or c.window == window}


def reset_text(seconds: float) -> str:
    """OpenAI's form for x-ratelimit-reset-*: whole seconds, e.g. ``37s``."""
    return f"{max(1, math.ceil(seconds))}s"
