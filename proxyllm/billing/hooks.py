"""Prepaid credits around each request: reserve before the upstream, settle after."""

from __future__ import annotations

from decimal import Decimal

from proxyllm.billing.service import Billing
from proxyllm.core.context import RequestContext
from proxyllm.core.hooks import Hook
from proxyllm.core.pricing import estimate_max_cost
from proxyllm.core.router import Router

ZERO = Decimal(0)


class PrepaidHook(Hook):
    """Admins (master key) are not charged; every virtual key is charged to its billing account.

    Retries and fallbacks happen inside one gateway call, so a request is reserved and settled once.
    """

    name = "prepaid"

    def __init__(self, billing: Billing, router: Router) -> None:
        self.billing = billing
        self.router = router

    async def before_call(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        if principal is None or principal.is_admin:
            return
        account = self.billing.account_of_request(ctx)
        group = self.router.find(ctx.model)
        settings = self.billing.settings
        estimate = estimate_max_cost(ctx, group.deployments if group else [], settings.default_max_tokens)
        if settings.max_reservation is not None:
            estimate = min(estimate, settings.max_reservation)
        await self.billing.ledger.reserve(account, estimate, ctx.request_id)
        ctx.extra["prepaid_account"] = account

    async def after_call(self, ctx: RequestContext) -> None:
        account = ctx.extra.get("prepaid_account")
        if account is not None:
            await self.billing.settle(account, ctx.request_id, ctx.cost or ZERO)

    async def start(self) -> None:
        await self.billing.start()

    async def stop(self) -> None:
        await self.billing.stop()
