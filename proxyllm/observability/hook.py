"""Metrics and the request log as one hook that only looks: it runs after every call, refused ones too.

It is the first hook of the list and overrides only ``after_call``, so the gateway runs it for every
request that reached the hooks — including those refused by authentication, limits or budgets — and
runs it last, once cost and outcome are final.
"""

from __future__ import annotations

from proxyllm.core.context import RequestContext
from proxyllm.core.hooks import Hook
from proxyllm.observability.logs import log_request
from proxyllm.observability.metrics import Metrics


class ObservabilityHook(Hook):
    name = "observability"

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def after_call(self, ctx: RequestContext) -> None:
        self.metrics.observe(ctx)
        log_request(ctx)

    async def start(self) -> None:
        await self.metrics.start()

    async def stop(self) -> None:
        await self.metrics.stop()
