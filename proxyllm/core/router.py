"""Choosing a deployment, retrying, and falling back: the router on every request's path.

One attempt loop serves streaming and non-streaming calls. A stream counts as started — and can no
longer be retried — only once its first event is in hand; until then every failure is retryable like
any other. After the first event, the relay (core/streaming.py) ends a failing stream with an error
event and reports back here through ``ctx.on_stream_end``.

Hot-path trade-offs, chosen on purpose:

- Every routing decision reads in-process state only: one ``DeploymentStats`` per deployment (cooldown
  deadline, this minute's usage, latency), mutated in place. A request for a healthy group costs two
  dict lookups, a clock read and the strategy's pick; nothing is allocated per request beyond a
  closure. No Redis round trip is ever on a request's path.
- With shared state (Redis), cooldowns are written through and announced by pub/sub, so replicas
  apply them within milliseconds (and reload them every ``COOLDOWN_RELOAD`` seconds in case an
  announcement was lost); failure counts are added up across replicas off the request path; usage
  counters are written in batches every ``sync_interval``. So rpm/tpm limits may be overshot by what
  other replicas send within one interval, and a cooldown reaches another replica a few milliseconds
  after it started. Latency and in-flight counts stay per process: they describe this process's view.
- A Redis outage only stops the sharing (one warning; see proxyllm/state/redis.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from proxyllm.core import clock
from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.memory_state import MemoryState
from proxyllm.core.routing.candidates import candidates
from proxyllm.core.routing.cooldowns import MARKS, Cooldowns
from proxyllm.core.routing.fallbacks import NO_FALLBACK_KINDS, fallbacks_after, final_error
from proxyllm.core.routing.groups import ModelGroup
from proxyllm.core.routing.policy import RouterPolicy
from proxyllm.core.routing.retries import counts_against, delay, retry_limit
from proxyllm.core.routing.stats import DeploymentStats, minute_of
from proxyllm.core.routing.strategies import UsageBased, strategy_for
from proxyllm.core.routing.usage import UsageSync
from proxyllm.core.routing.wildcards import WildcardRoute, Wildcards
from proxyllm.core.shared_state import SharedState

__all__ = ["ModelGroup", "Router", "RouterPolicy"]

log = logging.getLogger("proxyllm.router")
T = TypeVar("T")
WILDCARD_CACHE = 1024  # model groups made from wildcard entries kept at once
COOLDOWN_RELOAD = 2.0


class AttemptWrapper(Protocol):
    """Wraps one upstream attempt (tracing, observability/tracing.py): takes the attempt, returns one that
    does the same and more, for whatever the attempt returns (a body, or a stream and its first event)."""

    def __call__(
        self, ctx: RequestContext, attempt: Callable[[Deployment], Awaitable[T]]
    ) -> Callable[[Deployment], Awaitable[T]]: ...


class Router:
    def __init__(
        self,
        deployments: list[Deployment],
        policy: RouterPolicy,
        *,
        rng: random.Random | None = None,
        state: SharedState | None = None,
        wildcards: Sequence[WildcardRoute] = (),
    ) -> None:
        self.policy = policy
        self.rng = rng or random.Random()
        self.state = state or MemoryState()
        self.strategy = strategy_for(
            policy.routing_strategy, exploration=policy.exploration, buffer=policy.latency_buffer
        )
        self.stats: dict[str, DeploymentStats] = {}
        self.groups: dict[str, ModelGroup] = {}
        self.wildcards = Wildcards(wildcards)
        self._wild_groups: dict[str, ModelGroup] = {}
        self.cooldowns = Cooldowns(policy, self.state, self.stats.get)
        self.usage = UsageSync(self.state, self.stats.values, track_all=isinstance(self.strategy, UsageBased))
        self.state.subscribe(MARKS, self.cooldowns.on_event)
        self.state.on_recover(self._reload_soon)
        self._sync: asyncio.Task[None] | None = None
        self._stopping = False
        # Tracing's one way in (observability/tracing.py): wraps each upstream attempt when set; None costs nothing.
        self.attempt_wrapper: AttemptWrapper | None = None
        self.set_deployments(deployments)

    # -- the deployments ---------------------------------------------------------------------

    def set_deployments(self, deployments: list[Deployment]) -> None:
        """(Re)build the groups; a deployment keeping its id keeps its stats (and its cooldown)."""
        grouped: dict[str, list[DeploymentStats]] = {}
        served = {d.model_name for d in deployments if getattr(d.provider, "supported", True)}
        for dep in deployments:
            if not getattr(dep.provider, "supported", True) and dep.model_name in served:
                continue  # an unimplemented provider beside real ones is never picked (a lone one answers 501)
            grouped.setdefault(dep.model_name, []).append(self._stats_for(dep))
        self.groups = {name: ModelGroup(name, stats) for name, stats in grouped.items()}
        keep = {s.dep.id for g in (*self.groups.values(), *self._wild_groups.values()) for s in g.stats}
        for dep_id in [d for d in self.stats if d not in keep]:
            del self.stats[dep_id]

    def _stats_for(self, dep: Deployment) -> DeploymentStats:
        stats = self.stats.get(dep.id)
        if stats is None:
            stats = self.stats[dep.id] = DeploymentStats(dep)
        elif stats.dep is not dep:
            dep.in_flight = stats.dep.in_flight
            stats.dep = dep
        return stats

    @property
    def deployments(self) -> list[Deployment]:
        return [d for g in (*self.groups.values(), *self._wild_groups.values()) for d in g.deployments]

    def access_groups(self) -> set[str]:
        """Every ``model_info.access_groups`` name of the configured model groups."""
        return {name for group in self.groups.values() for name in group.access_groups}

    def model_names(self) -> list[str]:
        return sorted({*self.groups, *(a for a, target in self.policy.aliases.items() if target in self.groups)})

    def find(self, model: str) -> ModelGroup | None:
        try:
            return self._lookup(model)
        except ProxyError:
            return None

    def resolve(self, model: str) -> ModelGroup:
        group = self._lookup(model)
        if group is None:
            raise ProxyError(
                ErrorKind.NOT_FOUND,
                f"model '{model}' is not served by this proxy; GET /v1/models lists the models",
                param="model",
                code="model_not_found",
            )
        return group

    def _lookup(self, model: str) -> ModelGroup | None:
        group = self.groups.get(model) or self._wild_groups.get(model)
        if group is not None:
            return group
        target = self.policy.aliases.get(model)
        if target is not None:
            group = self.groups.get(target) or self._wild_groups.get(target)
            if group is not None:
                return group
            model = target
        return self._wildcard_group(model) if self.wildcards else None

    def _wildcard_group(self, model: str) -> ModelGroup | None:
        found = self.wildcards.deployments_for(model)
        if found is None:
            return None
        pattern, deployments = found
        if len(self._wild_groups) >= WILDCARD_CACHE:
            evicted = self._wild_groups.pop(next(iter(self._wild_groups)))
            for stats in evicted.stats:
                self.stats.pop(stats.dep.id, None)
        group = ModelGroup(model, [self._stats_for(d) for d in deployments], pattern=pattern)
        self._wild_groups[model] = group
        return group

    # -- calls -------------------------------------------------------------------------------

    async def complete(self, ctx: RequestContext) -> bytes:
        return await self._run(ctx, lambda dep: dep.provider.complete(dep, ctx), stream=False)

    async def open_stream(self, ctx: RequestContext) -> tuple[bytes, AsyncGenerator[bytes, None]]:
        """Start a stream and peek its first event, so failures before it can still be retried."""

        async def attempt(dep: Deployment) -> tuple[bytes, AsyncGenerator[bytes, None]]:
            events = dep.provider.stream(dep, ctx)
            wait = ctx.timeout or dep.stream_timeout
            try:
                async with asyncio.timeout(wait):
                    first = await anext(events)
            except StopAsyncIteration:
                raise ProxyError(ErrorKind.UPSTREAM, "upstream stream closed before sending anything") from None
            except TimeoutError:
                await events.aclose()
                raise ProxyError(ErrorKind.TIMEOUT, f"no first chunk from upstream within {wait:g}s") from None
            except BaseException:
                await events.aclose()
                raise
            return first, events

        return await self._run(ctx, attempt, stream=True)

    async def _run(self, ctx: RequestContext, attempt: Callable[[Deployment], Awaitable[T]], *, stream: bool) -> T:
        group = ctx.group or self.resolve(ctx.model)
        if self.attempt_wrapper is not None:
            attempt = self.attempt_wrapper(ctx, attempt)
        try:
            return await self._attempt_group(ctx, group, attempt, stream)
        except ProxyError as err:
            error = err
        tried = {group.name}
        for name in fallbacks_after(self.policy, ctx, group, error):
            if ctx.fallbacks >= self.policy.max_fallbacks:
                break
            fallback = self.find(name)
            if fallback is None:
                log.warning("fallback model group %r is not configured; skipped", name)
                continue
            if fallback.name in tried:
                continue
            tried.add(fallback.name)
            ctx.fallbacks += 1
            overrides = ctx.fallback_overrides.get(name) if ctx.fallback_overrides else None
            if overrides:
                ctx.body = {**ctx.body, **overrides}  # LiteLLM's fallback objects: this attempt's own fields
            log.info("request %s falls back from %s to %s after: %s", ctx.request_id, group.name, name, error.message)
            try:
                return await self._attempt_group(ctx, fallback, attempt, stream)
            except ProxyError as err:
                error = err
                if err.kind in NO_FALLBACK_KINDS:
                    break
        raise final_error(ctx, error)

    async def _attempt_group(
        self, ctx: RequestContext, group: ModelGroup, attempt: Callable[[Deployment], Awaitable[T]], stream: bool
    ) -> T:
        tried: set[str] | None = None
        minute = minute_of(clock.time())
        n = 0
        while True:
            stats = self._pick(ctx, group, tried)
            dep = stats.dep
            ctx.deployment = dep
            ctx.model_group = group.name
            headers = ctx.response_headers  # LiteLLM's: what this call ran with
            headers["x-litellm-timeout"] = f"{ctx.timeout or (dep.stream_timeout if stream else dep.timeout):g}"
            headers["x-litellm-max-retries"] = str(
                dep.max_retries if dep.max_retries is not None else self.policy.num_retries
            )
            if dep.region is not None:
                headers["x-litellm-model-region"] = dep.region
            stats.roll(minute)
            stats.pending_requests += 1
            dep.in_flight += 1
            started = time.perf_counter()
            try:
                result = await attempt(dep)
            except ProxyError as err:
                dep.in_flight -= 1
                elapsed = time.perf_counter() - started
                ctx.upstream_wait += elapsed
                ctx.attempts.append((dep, err))
                self._failed(ctx, group, stats, err, elapsed)
                if tried is None:
                    tried = set()
                tried.add(dep.id)
                if n >= retry_limit(self.policy, ctx, dep, err):
                    raise
                wait = delay(self.policy, self.rng, n, err, other_left=self._untried_left(group, tried))
                if wait is None:
                    raise
                log.info("retrying %s after %s (%.2fs): %s", ctx.request_id, dep.describe(), wait, err.message)
                n += 1
                ctx.retries += 1
                if wait:
                    await asyncio.sleep(wait)
                    ctx.upstream_wait += wait
                continue
            except BaseException:
                dep.in_flight -= 1
                raise
            elapsed = time.perf_counter() - started
            ctx.upstream_wait += elapsed
            stats.observe(elapsed, stream=stream)
            if stream:
                ctx.on_stream_end = self._stream_ended  # in flight until the relay closes the stream
            else:
                dep.in_flight -= 1
                if ctx.usage is not None:
                    stats.pending_tokens += ctx.usage.total_tokens
            return result

    # -- choosing ----------------------------------------------------------------------------

    def _pick(self, ctx: RequestContext, group: ModelGroup, tried: set[str] | None) -> DeploymentStats:
        if (
            tried is None
            and not (group.tagged and self.policy.tag_filtering)
            and not group.mixed_operations
            and not group.limited
            and not (group.input_limited and self.policy.pre_call_checks)
            and (not self.cooldowns.active or not self.cooldowns.any_cooling(clock.monotonic()))
        ):
            return self.strategy.pick(group, group.stats, ctx, self.rng)
        return self.strategy.pick(group, candidates(self.policy, self.cooldowns, ctx, group, tried), ctx, self.rng)

    def _untried_left(self, group: ModelGroup, tried: set[str]) -> bool:
        now = clock.monotonic()
        return any(s.dep.id not in tried and not self.cooldowns.cooling(s, now) for s in group.stats)

    # -- outcomes ----------------------------------------------------------------------------

    def _failed(
        self, ctx: RequestContext, group: ModelGroup, stats: DeploymentStats, err: ProxyError, elapsed: float
    ) -> None:
        if err.kind is ErrorKind.TIMEOUT:
            stats.observe(elapsed, stream=ctx.stream)  # slow is slow, answered or not
        if counts_against(ctx, stats.dep, err):
            self.cooldowns.record_failure(stats, err, others=len(group.stats) > 1)

    def _stream_ended(self, ctx: RequestContext) -> None:
        dep = ctx.deployment
        if dep is None:
            return
        dep.in_flight -= 1
        stats = self.stats.get(dep.id)
        if stats is None:
            return
        stats.pending_tokens += ctx.usage.total_tokens if ctx.usage is not None else ctx.output_chunks
        if ctx.outcome == "error" and ctx.error is not None and counts_against(ctx, dep, ctx.error):
            self.cooldowns.record_failure(stats, ctx.error, others=False)

    # -- background work and visibility ------------------------------------------------------

    async def start(self) -> None:
        if self.state.distributed:
            with contextlib.suppress(Exception):
                await self.cooldowns.reload()
            self._sync = asyncio.create_task(self._sync_forever())

    async def stop(self) -> None:
        self._stopping = True
        if self._sync is not None:
            self._sync.cancel()
            await asyncio.wait({self._sync}, timeout=2.0)  # a Redis client may swallow the cancel
            self._sync = None

    async def _sync_forever(self) -> None:
        interval = self.policy.sync_interval
        reload_every = max(1, round(COOLDOWN_RELOAD / interval))
        tick = 0
        while not self._stopping:
            await asyncio.sleep(interval)
            tick += 1
            if not self.state.shared:
                continue
            try:
                await self.usage.flush()
                if tick % reload_every == 0:
                    await self.cooldowns.reload()
            except Exception:
                log.exception("syncing router state failed")

    def _reload_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self.cooldowns.reload())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def status(self, dep: Deployment) -> JSONObject:
        """What /health shows about a deployment's routing state."""
        stats = self.stats.get(dep.id)
        if stats is None:
            return {"state": "unknown"}
        now = clock.monotonic()
        minute = minute_of(clock.time())
        cooling = self.cooldowns.cooling(stats, now)
        return {
            "state": "cooldown" if cooling else "available",
            "cooldown": (
                {"reason": stats.cool_reason, "remaining_seconds": round(stats.cool_until - now, 2)}
                if cooling
                else None
            ),
            "in_flight": dep.in_flight,
            "requests_this_minute": stats.requests_in(minute),
            "tokens_this_minute": stats.tokens_in(minute),
            "latency_ms": None if stats.latency is None else round(stats.latency * 1000, 1),
            "time_to_first_token_ms": None if stats.ttft is None else round(stats.ttft * 1000, 1),
        }

    def all_stats(self) -> Iterator[DeploymentStats]:
        return iter(list(self.stats.values()))
