"""Budget reservations shared by the replicas through Redis, so that together they cannot overspend.

In process, ``accounts.ledger`` reserves a request's maximum cost on its accounts and settles the real
cost afterwards; that stays, and is all there is without Redis. With Redis, the same reservation is
also made atomically in Redis for every account that has a ``max_budget`` — the admission script
checks ``spend + reserved < max_budget`` on all of them and reserves on all or none — and settled
there after the call. The request's rate limits are checked by the same script when it has a budget
(the rate-limit hook leaves them to this one), so a request makes one round trip before its upstream.

Redis keeps, per account and budget period, a hash of ``spend`` and ``reserved`` in integer
nano-dollars (amounts rounded up: Redis only decides admission; the database keeps the exact spend).
A period's hash is seeded from this replica's view of the spend (the database's, plus what it has
not written yet) the first time any replica needs it, and expires after ``ttl`` seconds unused, to
be seeded again. A budget reset needs nothing: a new period is a new hash. With
``billing.budgets_at_price`` the amounts are prices (the worst-case price reserved, the price settled,
seeded from the priced spend) in hashes under ``budget:price:``. While Redis is away,
admission falls back to the in-process ledger (per replica), and Redis misses what is spent meanwhile
until the period's hash is seeded again.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from proxyllm.accounts.ledger import Account, Reservation, budget_error
from proxyllm.core.context import RequestContext, Slot
from proxyllm.limits.hook import DEFERRED, GRANT, RateLimitHook, grant_headers
from proxyllm.limits.local import Refusal
from proxyllm.limits.shared import BudgetAsk, BudgetRefusal, SharedLimiter

NANO = Decimal(10**9)
DEFAULT_TTL = 3600.0
SHARED: Slot[BudgetAsk] = Slot("shared_reservation")


def nano(amount: Decimal, rounding: str = ROUND_CEILING) -> int:
    return int((amount * NANO).to_integral_value(rounding))


class SharedBudgets:
    def __init__(self, limits: RateLimitHook, *, ttl: float = DEFAULT_TTL, at_price: bool = False) -> None:
        self.limits = limits
        self.limiter: SharedLimiter = limits.limiter
        self.ttl_ms = int(ttl * 1000)
        # Budgets counted at the price keep hashes of their own: a restart that switches
        # ``billing.budgets_at_price`` must not mix amounts counted the other way.
        self.prefix = f"{self.limiter.scripts.namespace}:budget:{'price:' if at_price else ''}"
        limits.defer_to_budgets = True

    def needed(self, ctx: RequestContext) -> bool:
        """Whether ``reserve`` has anything to do: Redis is there, or limits wait to be checked with it."""
        return self.limiter.shared or ctx.get(DEFERRED) is not None

    def key(self, account: Account) -> str:
        period = int(account.reset_at.timestamp()) if account.reset_at is not None else 0
        return f"{self.prefix}{account.kind}:{account.id}:{period}"

    async def reserve(self, reservation: Reservation, ctx: RequestContext) -> None:
        """Reserve in Redis too (with the request's deferred rate limits), or raise 400 / 429."""
        rules = ctx.pop(DEFERRED) or []
        accounts = [a for a in reservation.accounts if a.max_budget is not None]
        ask = self.ask(accounts, reservation.amount) if accounts and self.limiter.shared else None
        if not rules and ask is None:
            return
        try:
            grant = await self.limiter.acquire(rules, ctx.request_id, ask)
        except Refusal as refusal:
            raise self.limits.refuse(refusal) from None
        except BudgetRefusal as spent:
            raise budget_error(
                accounts[spent.index], spend=Decimal(spent.spend) / NANO, reserved=Decimal(spent.reserved) / NANO
            ) from None
        if grant is None:
            return
        if rules:
            ctx.put(GRANT, grant)
            ctx.response_headers.update(grant_headers(grant))
        if grant.budget is not None:
            ctx.put(SHARED, grant.budget)

    def ask(self, accounts: list[Account], amount: Decimal) -> BudgetAsk:
        args: list[int] = []
        for account in accounts:
            assert account.max_budget is not None
            args += (nano(account.max_budget, ROUND_FLOOR), nano(account.spend))
        return BudgetAsk([self.key(a) for a in accounts], args, nano(amount), self.ttl_ms)

    async def settle(self, ctx: RequestContext, cost: Decimal) -> None:
        ask = ctx.get(SHARED)
        if ask is not None:
            self.limiter.settle_soon(ask, nano(cost))
