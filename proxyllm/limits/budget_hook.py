"""Budgets on the request path: the worst case is reserved on every budget the key answers to (its own,
its user's, its team's; in this process, and across replicas through Redis when configured), and the real
amount settled after the call.

What a budget counts is the operator's cost (LiteLLM's meaning of ``spend``), or, with
``billing.budgets_at_price``, the customer's price: then the reservation is the worst-case price
(``Admission.max_price``, set by the price hook of billing/prices.py before this one runs; the
worst-case cost when no price hook runs, since the price is then the cost) and the settlement the
request's price. Either way the spend writer adds both the cost (``spend``) and the price
(``spend_price``) to the accounts.
"""

from __future__ import annotations

from decimal import Decimal

from proxyllm.accounts.end_users import end_user_account
from proxyllm.accounts.hooks import key_auth
from proxyllm.accounts.ledger import Reservation, reserve, settle
from proxyllm.accounts.writer import SpendWriter
from proxyllm.core.admission import Admission
from proxyllm.core.context import RequestContext, Slot
from proxyllm.core.hooks import Hook
from proxyllm.core.pricing import request_price
from proxyllm.limits.budgets import SharedBudgets

ZERO = Decimal(0)
RESERVATION: Slot[Reservation] = Slot("budget_reservation")


class BudgetHook(Hook):
    """Reserves the request's worst case (from the admission step) on its budgets, settles the real one."""

    name = "budgets"

    def __init__(self, writer: SpendWriter, *, shared: SharedBudgets | None = None, at_price: bool = False) -> None:
        self.writer = writer
        self.shared = shared  # reservations across replicas (Redis), on top of this process's
        self.at_price = at_price  # budgets count the customer's price instead of the cost

    def worst_case(self, admission: Admission) -> Decimal:
        if self.at_price and admission.max_price is not None:
            return admission.max_price
        return admission.max_cost

    async def before_call(self, ctx: RequestContext) -> None:
        auth = key_auth(ctx)
        admission = ctx.admission
        end_user = end_user_account(ctx)  # the request's end user (accounts/end_users.py), any caller
        if (auth is None and end_user is None) or admission is None:
            return
        accounts = auth.accounts if auth is not None else []
        if end_user is not None:
            accounts = [*accounts, end_user]
        if any(a.max_budget is not None for a in accounts):
            admission.cap_output(ctx)  # money is at stake: the answer may not outgrow the reservation
        reservation = reserve(accounts, self.worst_case(admission))
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
        price = request_price(ctx)
        counted = price if self.at_price else cost
        settle(reservation, counted)
        if self.shared is not None:
            await self.shared.settle(ctx, counted)
        if cost or price:
            self.writer.add_charge([a.key for a in reservation.accounts], cost, price)
