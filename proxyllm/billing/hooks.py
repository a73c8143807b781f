"""Prepaid credits around each request: reserve before the upstream (one round trip, bounded in
time), settle after (queued: the spend writer's batch carries it)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal

from proxyllm.billing.ledger import AccountRef
from proxyllm.billing.service import Billing
from proxyllm.core.context import RequestContext, Slot
from proxyllm.core.hooks import Hook
from proxyllm.core.pricing import request_price
from proxyllm.db.database import DatabaseUnavailable

PREPAID: Slot[AccountRef] = Slot("prepaid_account")  # the account a reservation was made on

ZERO = Decimal(0)
RESERVE_TIMEOUT = 2.0
TIMEOUT_ENV = "PROXYLLM_PREPAID_TIMEOUT_SECONDS"


def reserve_timeout(env: Mapping[str, str]) -> float:
    """How long a prepaid reservation may wait on the database before the request is refused (503):
    ``PROXYLLM_PREPAID_TIMEOUT_SECONDS``, 0.1 to 60, default 2."""
    raw = env.get(TIMEOUT_ENV)
    if not raw:
        return RESERVE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.1 <= value <= 60:  # also refuses nan and inf
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds from 0.1 to 60, not {raw!r}")
    return value


class PrepaidHook(Hook):
    """Admins (master key) are not charged; every virtual key is charged to its billing account, at the
    customer's price (billing/prices.py): the worst-case price is reserved, the real price settled.

    Retries and fallbacks happen inside one gateway call, so a request is reserved and settled once.
    """

    name = "prepaid"

    def __init__(self, billing: Billing, *, timeout: float = RESERVE_TIMEOUT) -> None:
        self.billing = billing
        self.timeout = timeout  # a slow database fails prepaid requests closed, quickly (503)

    async def before_call(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        admission = ctx.admission
        if principal is None or principal.is_admin or admission is None:
            return
        account = self.billing.account_of_request(ctx)
        admission.cap_output(ctx)  # the answer may not outgrow what is reserved
        try:
            async with asyncio.timeout(self.timeout):
                worst = admission.max_cost if admission.max_price is None else admission.max_price
                await self.billing.ledger.reserve(account, worst, ctx.request_id)
        except TimeoutError:
            # The statement may still have run: release whatever it held (a settlement of zero).
            self.billing.queue_settlement(account, ctx.request_id, ZERO)
            raise DatabaseUnavailable(f"the prepaid balance could not be checked within {self.timeout:g}s") from None
        ctx.put(PREPAID, account)

    async def after_call(self, ctx: RequestContext) -> None:
        account = ctx.get(PREPAID)
        if account is not None:
            self.billing.queue_settlement(account, ctx.request_id, request_price(ctx))

    async def start(self) -> None:
        await self.billing.start()

    async def stop(self) -> None:
        await self.billing.stop()
