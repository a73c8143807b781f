"""Choosing a deployment, retrying, and falling back.

One attempt loop serves streaming and non-streaming calls. A stream counts as started — and can no
longer be retried — only once its first event is in hand; until then every failure is retryable like
any other.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.errors import ErrorKind, ProxyError

log = logging.getLogger("proxyllm.router")
T = TypeVar("T")
NO_FALLBACK_KINDS = frozenset(
    {ErrorKind.INVALID_REQUEST, ErrorKind.CONTEXT_WINDOW_EXCEEDED, ErrorKind.CONTENT_POLICY, ErrorKind.NOT_FOUND}
)


@dataclass(slots=True)
class RouterPolicy:
    num_retries: int = 2
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    max_retry_wait: float = 10.0  # a Retry-After longer than this is not waited for
    backoff_base: float = 0.1


class ModelGroup:
    """The deployments behind one model name, with a weighted random pick."""

    __slots__ = ("_cumulative", "deployments", "name")

    def __init__(self, name: str, deployments: list[Deployment]) -> None:
        self.name = name
        self.deployments = deployments
        self._cumulative = list(itertools.accumulate(d.weight for d in deployments))

    def pick(self, rng: random.Random, exclude: set[str]) -> Deployment:
        deps = self.deployments
        if len(deps) == 1:
            return deps[0]
        if exclude:
            fresh = [d for d in deps if d.id not in exclude]
            if fresh and len(fresh) < len(deps):
                return ModelGroup(self.name, fresh).pick(rng, set())
        total = self._cumulative[-1]
        return deps[bisect.bisect_right(self._cumulative, rng.random() * total)]


class Router:
    def __init__(self, deployments: list[Deployment], policy: RouterPolicy, *, rng: random.Random | None = None):
        self.policy = policy
        self.rng = rng or random.Random()
        self.groups: dict[str, ModelGroup] = {}
        self.set_deployments(deployments)

    def set_deployments(self, deployments: list[Deployment]) -> None:
        grouped: dict[str, list[Deployment]] = {}
        for dep in deployments:
            grouped.setdefault(dep.model_name, []).append(dep)
        self.groups = {name: ModelGroup(name, deps) for name, deps in grouped.items()}

    @property
    def deployments(self) -> list[Deployment]:
        return [d for g in self.groups.values() for d in g.deployments]

    def model_names(self) -> list[str]:
        return sorted({*self.groups, *(a for a, target in self.policy.aliases.items() if target in self.groups)})

    def find(self, model: str) -> ModelGroup | None:
        group = self.groups.get(model)
        if group is None and model in self.policy.aliases:
            group = self.groups.get(self.policy.aliases[model])
        return group

    def resolve(self, model: str) -> ModelGroup:
        group = self.find(model)
        if group is None:
            raise ProxyError(
                ErrorKind.NOT_FOUND,
                f"model '{model}' is not served by this proxy; GET /v1/models lists the models",
                param="model",
                code="model_not_found",
            )
        return group

    async def complete(self, ctx: RequestContext) -> bytes:
        return await self._run(ctx, lambda dep: dep.provider.complete(dep, ctx))

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

        return await self._run(ctx, attempt)

    def _chain(self, ctx: RequestContext, group: ModelGroup) -> list[str]:
        fallbacks = ctx.request_fallbacks
        if fallbacks is None:
            fallbacks = self.policy.fallbacks.get(group.name) or self.policy.fallbacks.get(ctx.model) or []
        return [group.name, *fallbacks]

    async def _run(self, ctx: RequestContext, attempt: Callable[[Deployment], Awaitable[T]]) -> T:
        first_group = self.resolve(ctx.model)
        chain = self._chain(ctx, first_group)
        last: ProxyError | None = None
        for position, name in enumerate(chain):
            group = first_group if position == 0 else self.find(name)
            if group is None:
                log.warning("fallback model group %r is not configured; skipped", name)
                continue
            if position:
                ctx.fallbacks += 1
                log.info("request %s falls back to %s after: %s", ctx.request_id, name, last)
            try:
                return await self._attempt_group(ctx, group, attempt)
            except ProxyError as err:
                last = err
                if err.kind in NO_FALLBACK_KINDS:
                    break
        assert last is not None
        raise self._final_error(ctx, last)

    async def _attempt_group(
        self, ctx: RequestContext, group: ModelGroup, attempt: Callable[[Deployment], Awaitable[T]]
    ) -> T:
        tried: set[str] = set()
        retries = self.policy.num_retries
        n = 0
        while True:
            dep = group.pick(self.rng, tried)
            if n == 0 and dep.max_retries is not None:
                retries = dep.max_retries
            ctx.deployment = dep
            ctx.model_group = group.name
            dep.in_flight += 1
            try:
                return await attempt(dep)
            except ProxyError as err:
                ctx.attempts.append((dep, err))
                tried.add(dep.id)
                if not err.retryable or n >= retries:
                    raise
                delay = self._delay(n, err, other_left=len(tried) < len(group.deployments))
                if delay is None:
                    raise
                log.info("retrying %s after %s (%.2fs): %s", ctx.request_id, dep.describe(), delay, err.message)
                n += 1
                ctx.retries += 1
                if delay:
                    await asyncio.sleep(delay)
            finally:
                dep.in_flight -= 1

    def _delay(self, n: int, err: ProxyError, *, other_left: bool) -> float | None:
        """Seconds to wait before retry ``n + 1``; None when waiting is not worth it."""
        backoff = self.policy.backoff_base * (2.0**n) * (0.5 + self.rng.random())
        if other_left:
            return backoff  # another deployment need not wait for this one's Retry-After
        if err.retry_after is not None:
            if err.retry_after > self.policy.max_retry_wait:
                return None
            return err.retry_after + backoff * 0.1
        return backoff

    @staticmethod
    def _final_error(ctx: RequestContext, last: ProxyError) -> ProxyError:
        if len(ctx.attempts) <= 1:
            return last
        lines = "; ".join(
            f"[{i + 1}] {dep.model_name} via {dep.provider.name}/{dep.upstream_model} "
            f"(id {dep.id}): {err.status} {err.message}"
            for i, (dep, err) in enumerate(ctx.attempts)
        )
        return ProxyError(
            last.kind,
            f"all {len(ctx.attempts)} attempts failed: {lines}",
            status=last.status,
            retry_after=last.retry_after,
            code=last.code,
        )
