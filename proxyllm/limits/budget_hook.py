"""Budgets on the request path: the worst-case cost is reserved on every budget the key answers to (its own,
its user's, its team's; in this process, and across replicas through Redis when configured), and the real
cost settled after the call."""

from __future__ import annotations

from decimal import Decimal

from proxyllm.accounts.hooks import key_auth
from proxyllm.accounts.ledger import Reservation, reserve, settle
from proxyllm.accounts.writer import SpendWriter
from proxyllm.core.context import RequestContext, Slot
from proxyllm.core.hooks import Hook
from proxyllm.limits.budgets import SharedBudgets

ZERO = Decimal(0)
RESERVATION: Slot[Reservation] = Slot("budget_reservation")


class BudgetHook(Hook):
    """Reserves the request's worst-case cost (from the admission step) on its budgets, settles the real one."""

    name = "budgets"

    def __init__(self, writer: SpendWriter, *, shared: SharedBudgets | None = None) -> None:
        self.writer = writer
        self.shared = shared  # reservations across replicas (Redis), on top of this process's

    async def before_call(self, ctx: RequestContext) -> None:
        auth = key_auth(ctx)
        admission = ctx.admission
        if auth is None or admission is None:
            return
        accounts = auth.accounts
        if any(a.max_budget is not None for a in accounts):
            admission.cap_output(ctx)  # money is at stake: the answer may not outgrow the reservation
        reservation = reserve(accounts, admission.max_cost)
        if self.shared is not None and self.shared.needed(ctx):
            try:
                await self.shared.reserve(reservation, ctx)
            except BaseException:
                settle(reservation, ZERO)
                raise
        ctx.put(RESERVATION, reservation)

    async def after_call(self, ctx: RequestContext) -> None:
        reservation = ctx.get(RESERVATION)
        if reservation is None:
            return
        cost = ctx.cost or ZERO
        settle(reservation, cost)
        if self.shared is not None:
            await self.shared.settle(ctx, cost)
        if cost:
            self.writer.add_charge([a.key for a in reservation.accounts], cost)
