"""The one gateway call: hooks before, the router, cost, hooks after.

``call`` returns the response body (bytes) or a started stream. ``finish`` runs the after-hooks; the
HTTP layer calls it once the response is out — for streams, after the last event or the client's
disconnect — so accounting never delays the bytes a client is waiting for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Sequence

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.hooks import Hook, overrides
from proxyllm.core.mock import mock_body, mock_stream
from proxyllm.core.pricing import ZERO, call_cost, estimate_prompt_tokens
from proxyllm.core.router import Router
from proxyllm.core.streaming import relay
from proxyllm.core.types import Operation, Usage

log = logging.getLogger("proxyllm.gateway")


class Gateway:
    def __init__(self, router: Router, hooks: Sequence[Hook] = ()) -> None:
        self.router = router
        self.hooks = list(hooks)
        self._before = [overrides(h, "before_call") for h in self.hooks]
        self._after = [overrides(h, "after_call") for h in self.hooks]

    async def call(self, ctx: RequestContext) -> bytes | AsyncGenerator[bytes, None]:
        try:
            for i, hook in enumerate(self.hooks):
                answer = await hook.before_call(ctx) if self._before[i] else None
                ctx.hooks_ran = i + 1
                if answer is not None:
                    # Answered by this hook (a response-cache hit): the hooks after it (budgets, prepaid
                    # credit) never run, so a hit reserves and charges nothing; no upstream is called.
                    ctx.outcome = "success"
                    ctx.cost = ZERO
                    return answer
            tap = ctx.response_wrapper  # a hook that wants the response (the cache, to store it)
            if ctx.local_answer is not None:
                ctx.outcome = "success"
                ctx.cost = ZERO
                return ctx.local_answer
            if ctx.mock_response is not None and ctx.operation is not Operation.EMBEDDING:
                return self._mock(ctx, ctx.mock_response)
            if ctx.stream:
                first, events = await self.router.open_stream(ctx)
                assert ctx.deployment is not None
                stream = relay(ctx, first, events, ctx.deployment.stream_idle_timeout)
                return stream if tap is None else tap(ctx, stream)
            body = await self.router.complete(ctx)
        except ProxyError as err:
            ctx.outcome, ctx.error = "error", err
            raise
        ctx.outcome = "success"
        self.settle_cost(ctx)
        return body if tap is None else tap(ctx, body)

    def _mock(self, ctx: RequestContext, text: str) -> bytes | AsyncGenerator[bytes, None]:
        group = ctx.group or self.router.resolve(ctx.model)
        ctx.deployment = group.deployments[0] if group.deployments else None
        ctx.model_group = group.name
        ctx.outcome = "success"
        if ctx.stream:
            return mock_stream(ctx, text)
        body = mock_body(ctx, text)
        self.settle_cost(ctx)
        return body

    def settle_cost(self, ctx: RequestContext) -> None:
        dep = ctx.deployment
        if dep is None:
            return
        if ctx.usage is None and ctx.operation.value != "embedding" and ctx.output_chunks:
            # No usage from upstream (e.g. a stream cut short): one event is about one token.
            ctx.usage = Usage(estimate_prompt_tokens(ctx.body), ctx.output_chunks, estimated=True)
        ctx.cost = call_cost(dep, ctx.usage, time.perf_counter() - ctx.started)

    async def finish(self, ctx: RequestContext) -> None:
        """Run after-hooks in reverse order for every hook whose before-hook ran."""
        if ctx.stream:
            if ctx.outcome == "pending":
                ctx.outcome = "cancelled"
            self.settle_cost(ctx)  # what was produced is charged, whatever the outcome
        ctx.upstream_seconds = time.perf_counter() - ctx.started
        for i in range(ctx.hooks_ran - 1, -1, -1):
            if self._after[i]:
                try:
                    await self.hooks[i].after_call(ctx)
                except Exception:
                    log.exception("after_call of hook %s failed for request %s", self.hooks[i].name, ctx.request_id)

    async def start(self) -> None:
        for hook in self.hooks:
            await hook.start()

    async def stop(self) -> None:
        for hook in reversed(self.hooks):
            try:
                await hook.stop()
            except Exception:
                log.exception("stopping hook %s failed", hook.name)


def internal_error(request_id: str) -> ProxyError:
    return ProxyError(ErrorKind.INTERNAL, f"internal error in the proxy (request id {request_id})")
