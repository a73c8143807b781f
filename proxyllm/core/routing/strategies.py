"""How one deployment is chosen among the available ones of a model group.

A strategy gets the candidates — deployments neither cooling down nor at their rpm/tpm limit, and
not yet tried by this request when others are left — and returns one. Ties are broken at random so
equal deployments share the load. ``simple-shuffle`` over a whole group uses the group's precomputed
cumulative weights (one random number and a bisect); the others scan the few candidates.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, TypeVar

from proxyllm.core import clock
from proxyllm.core.context import RequestContext
from proxyllm.core.routing.stats import DeploymentStats, minute_of

if TYPE_CHECKING:
    from proxyllm.core.routing.groups import ModelGroup

# What a strategy ranks deployments by: in-flight calls, tokens this minute, latency, or price per token.
Rank = TypeVar("Rank", int, float, Decimal)


class Strategy:
    name: ClassVar[str]

    def pick(
        self, group: ModelGroup, candidates: Sequence[DeploymentStats], ctx: RequestContext, rng: random.Random
    ) -> DeploymentStats:
        raise NotImplementedError


def lowest(
    candidates: Sequence[DeploymentStats], key: Callable[[DeploymentStats], Rank], rng: random.Random
) -> DeploymentStats:
    best: Rank | None = None
    ties: list[DeploymentStats] = []
    for stats in candidates:
        value = key(stats)
        if best is None or value < best:
            best, ties = value, [stats]
        elif value == best:
            ties.append(stats)
    return ties[0] if len(ties) == 1 else rng.choice(ties)


class SimpleShuffle(Strategy):
    """Random, in proportion to each deployment's ``weight``."""

    name = "simple-shuffle"

    def pick(
        self, group: ModelGroup, candidates: Sequence[DeploymentStats], ctx: RequestContext, rng: random.Random
    ) -> DeploymentStats:
        if len(candidates) == 1:
            return candidates[0]
        if candidates is group.stats:
            cumulative = group.cumulative
            index = bisect.bisect_right(cumulative, rng.random() * cumulative[-1])
            return group.stats[index]
        point = rng.random() * sum(s.dep.weight for s in candidates)
        for stats in candidates:
            point -= stats.dep.weight
            if point < 0:
                return stats
        return candidates[-1]


class LeastBusy(Strategy):
    """Fewest requests in flight in this process."""

    name = "least-busy"

    def pick(
        self, group: ModelGroup, candidates: Sequence[DeploymentStats], ctx: RequestContext, rng: random.Random
    ) -> DeploymentStats:
        return lowest(candidates, _in_flight, rng)


class LatencyBased(Strategy):
    """Lowest recent latency (time to first token for streams); a small share explores the others.

    A deployment without samples counts as the fastest, so new and restarted deployments are tried.
    ``exploration`` of the requests go to a random candidate, so a deployment that was slow once gets
    measured again after it recovered. With ``buffer`` > 0 the pick is random among all deployments
    within that fraction of the best.
    """

    name = "latency-based-routing"

    def __init__(self, exploration: float = 0.05, buffer: float = 0.0) -> None:
        self.exploration = exploration
        self.buffer = buffer

    def pick(
        self, group: ModelGroup, candidates: Sequence[DeploymentStats], ctx: RequestContext, rng: random.Random
    ) -> DeploymentStats:
        if len(candidates) == 1:
            return candidates[0]
        if self.exploration and rng.random() < self.exploration:
            return rng.choice(candidates)
        key = _ttft if ctx.stream else _latency
        if self.buffer:
            best = min(key(s) for s in candidates)
            return rng.choice([s for s in candidates if key(s) <= best * (1 + self.buffer)])
        return lowest(candidates, key, rng)


class UsageBased(Strategy):
    """Fewest tokens used this minute (across replicas when state is shared)."""

    name = "usage-based-routing-v2"

    def pick(
        self, group: ModelGroup, candidates: Sequence[DeploymentStats], ctx: RequestContext, rng: random.Random
    ) -> DeploymentStats:
        minute = minute_of(clock.time())
        return lowest(candidates, lambda s: s.tokens_in(minute), rng)


class CostBased(Strategy):
    """Lowest price per token (input + output); a deployment without prices costs nothing."""

    name = "cost-based-routing"

    def pick(
        self, group: ModelGroup, candidates: Sequence[DeploymentStats], ctx: RequestContext, rng: random.Random
    ) -> DeploymentStats:
        return lowest(candidates, _cost, rng)


def _in_flight(stats: DeploymentStats) -> int:
    return stats.dep.in_flight


def _latency(stats: DeploymentStats) -> float:
    return stats.latency or 0.0


def _ttft(stats: DeploymentStats) -> float:
    value = stats.ttft if stats.ttft is not None else stats.latency
    return value or 0.0


def _cost(stats: DeploymentStats) -> Decimal:
    return stats.cost


STRATEGIES = {s.name: s for s in (SimpleShuffle, LeastBusy, LatencyBased, UsageBased, CostBased)}
ALIASES = {"shuffle": "simple-shuffle", "usage-based-routing": "usage-based-routing-v2"}


def strategy_for(name: str, *, exploration: float = 0.05, buffer: float = 0.0) -> Strategy:
    name = ALIASES.get(name, name)
    if name == LatencyBased.name:
        return LatencyBased(exploration, buffer)
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ValueError(f"unknown routing_strategy {name!r} (known: {', '.join(STRATEGIES)})")
    return cls()
