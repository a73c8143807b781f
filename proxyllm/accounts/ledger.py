"""Budgets held exactly under concurrency, in process.

Each budgeted account (key, user, team) is one ``Account`` object shared by every key that draws on
it. A request is admitted while some budget is left unreserved, and reserves its estimated maximum
cost on all its accounts at once (no await in between) before it reaches an upstream; afterwards it
settles to the real cost. Concurrent requests therefore see each other's reservations: 50 requests
at a budget that covers five cannot all pass, and the most a budget can be overspent by is the last
admitted request's cost beyond what was left. Settled amounts are
written to the database as increments by the spend writer; other replicas' spend arrives when an
account is reloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from proxyllm.accounts.durations import next_reset
from proxyllm.core import clock
from proxyllm.core.errors import ErrorKind, ProxyError

ZERO = Decimal(0)
AccountId = tuple[str, str]  # (kind, id): ("key", hash) | ("user", id) | ("team", id) | ("end_user", id)


@dataclass(slots=True, eq=False)
class Account:
    kind: str
    id: str
    max_budget: Decimal | None = None
    spend: Decimal = ZERO  # what the budget counts: the cost, or the price with ``billing.budgets_at_price``
    reserved: Decimal = ZERO
    budget_duration: str | None = None
    reset_at: datetime | None = None
    models: list[str] = field(default_factory=list)
    blocked: bool = False
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None

    @property
    def key(self) -> AccountId:
        return (self.kind, self.id)

    def roll_over(self, now: datetime) -> None:
        """Start a new budget period when the reset time has passed."""
        if self.reset_at is not None and self.budget_duration and now >= self.reset_at:
            self.spend = ZERO
            self.reset_at = next_reset(now, self.budget_duration, self.reset_at)

    def label(self) -> str:
        return f"{self.kind} '{self.id[:12]}...'" if self.kind == "key" else f"{self.kind} '{self.id}'"


@dataclass(slots=True)
class Reservation:
    accounts: list[Account]
    amount: Decimal
    settled: bool = False


def budget_error(account: Account, *, spend: Decimal | None = None, reserved: Decimal | None = None) -> ProxyError:
    """Out of budget, in LiteLLM's words; ``spend``/``reserved`` when another view than this process's
    decided (Redis)."""
    spend = account.spend if spend is None else spend
    reserved = account.reserved if reserved is None else reserved
    if account.kind == "end_user":  # LiteLLM's words for an end user's budget
        return ProxyError(
            ErrorKind.BUDGET_EXCEEDED,
            f"ExceededBudget: End User={account.id} over budget. Spend={_plain(spend)}, "
            f"Budget={_plain(account.max_budget)} ({_plain(reserved)} more is reserved by requests in flight)",
        )
    return ProxyError(
        ErrorKind.BUDGET_EXCEEDED,
        f"Budget has been exceeded! Current cost: {_plain(spend)}, Max budget: {_plain(account.max_budget)} "
        f"({account.label()}; {_plain(reserved)} more is reserved by requests in flight"
        + (f"; resets at {account.reset_at.isoformat()})" if account.reset_at else ")"),
    )


def _plain(amount: Decimal | None) -> str:
    if amount is None:
        return "None"
    text = format(amount.normalize(), "f")
    return text if "." in text else text + ".0"


def reserve(accounts: list[Account], amount: Decimal, now: datetime | None = None) -> Reservation:
    """Reserve ``amount`` on every account, or on none (all-or-nothing; no await in between)."""
    now = now or clock.now()
    for account in accounts:
        account.roll_over(now)
        limit = account.max_budget
        if limit is not None and account.spend + account.reserved >= limit:
            raise budget_error(account)
    for account in accounts:
        account.reserved += amount
    return Reservation(accounts, amount)


def settle(reservation: Reservation, cost: Decimal) -> None:
    """Replace the reservation by the real cost (zero releases it)."""
    if reservation.settled:
        return
    reservation.settled = True
    for account in reservation.accounts:
        account.reserved -= reservation.amount
        account.spend += cost
