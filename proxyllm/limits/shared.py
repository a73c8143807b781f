"""Rate and concurrency limits held in Redis, exact across replicas: one Lua script per admission.

The admission script checks every rule of the request and, only if all pass, counts the request on
each: atomic, with the minute taken from Redis's clock so every replica agrees on it. Requests per
minute and tokens per minute live in a hash per scope and minute; parallel requests are members of a
sorted set scored by a lease deadline, so the slots of a replica that died free themselves when the
lease ends (``lease`` seconds, longer than any request may last). The same script also reserves the
request's budget (limits/budgets.py) when it has one, so a request makes one round trip to Redis
before its upstream call, whatever applies to it. The release script, run after the response, frees
the slots and adds the tokens.

Without Redis, or while it is unreachable, the ``LocalLimiter`` counts instead (one warning when that
starts, one when Redis is back): limits then hold per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence

from proxyllm.limits.local import Grant, LocalLimiter, Refusal
from proxyllm.limits.rules import PARALLEL, RPM, TPM, Rule
from proxyllm.state.scripts import Scripts

SETTLE_DELAY = 0.005  # seconds settlements are gathered before their pipeline is sent
SETTLE_BATCH = 500
log = logging.getLogger("proxyllm.limits")
LIMITS = (RPM, TPM, PARALLEL)
DEFAULT_LEASE = 3600.0

# KEYS: n limit scopes' prefixes, then budget hashes (one per account and period).
# ARGV: request id, lease ms, n, budget ttl ms, budget amount; per limit: rpm, tpm, parallel (-1: none);
# per budget: max budget, seed spend (integer nano-dollars).
# Returns {0, reset ms, then per limit: requests, tokens, in flight}; refused by a limit: {1, i, limit
# (1 rpm, 2 tpm, 3 parallel), reset ms, used}; by a budget: {2, j, spend, reserved}.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / 60000)
local reset = 60000 - (now % 60000)
local lease, n, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local req, tok, par = {}, {}, {}
for i = 1, n do
  local key, base = KEYS[i], 5 + (i - 1) * 3
  local rpm, tpm, cap = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local counts = redis.call('HMGET', key .. ':' .. window, 'r', 't')
  req[i] = tonumber(counts[1] or '0')
  tok[i] = tonumber(counts[2] or '0')
  if rpm >= 0 and req[i] >= rpm then return {1, i, 1, reset, req[i]} end
  if tpm >= 0 and tok[i] >= tpm then return {1, i, 2, reset, tok[i]} end
  par[i] = 0
  if cap >= 0 then
    redis.call('ZREMRANGEBYSCORE', key .. ':p', '-inf', now)
    par[i] = redis.call('ZCARD', key .. ':p')
    if par[i] >= cap then return {1, i, 3, 1000, par[i]} end
  end
end
local b0 = 5 + n * 3
for j = n + 1, #KEYS do
  local key, base = KEYS[j], b0 + (j - n - 1) * 2
  if redis.call('EXISTS', key) == 0 then redis.call('HSET', key, 's', ARGV[base + 2], 'r', 0) end
  local vals = redis.call('HMGET', key, 's', 'r')
  local spend, reserved = tonumber(vals[1]), tonumber(vals[2])
  if spend + reserved >= tonumber(ARGV[base + 1]) then return {2, j - n, spend, reserved} end
end
local out = {0, reset}
for i = 1, n do
  local key, counts = KEYS[i], KEYS[i] .. ':' .. window
  req[i] = redis.call('HINCRBY', counts, 'r', 1)
  if req[i] == 1 then redis.call('PEXPIRE', counts, 120000) end
  if tonumber(ARGV[5 + (i - 1) * 3 + 3]) >= 0 then
    redis.call('ZADD', key .. ':p', now + lease, ARGV[1])
    redis.call('PEXPIRE', key .. ':p', lease)
    par[i] = par[i] + 1
  end
  table.insert(out, req[i])
  table.insert(out, tok[i])
  table.insert(out, par[i])
end
for j = n + 1, #KEYS do
  redis.call('HINCRBY', KEYS[j], 'r', ARGV[5])
  redis.call('PEXPIRE', KEYS[j], ttl)
end
return out
"""

# KEYS[i]: a scope's prefix. ARGV[1]: request id, ARGV[2]: tokens, ARGV[2 + i]: 1 when KEYS[i] holds a slot.
RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / 60000)
local tokens = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  if ARGV[2 + i] == '1' then redis.call('ZREM', key .. ':p', ARGV[1]) end
  if tokens > 0 then
    local counts = key .. ':' .. window
    redis.call('HINCRBY', counts, 't', tokens)
    if redis.call('PTTL', counts) < 0 then redis.call('PEXPIRE', counts, 120000) end
  end
end
return 1
"""


# KEYS: the budget hashes reserved on. ARGV: ttl ms, amount reserved, real cost. A hash that expired
# meanwhile is left alone: it is seeded again, with this cost in it, when next needed.
SETTLE = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local reserved = redis.call('HINCRBY', key, 'r', -tonumber(ARGV[2]))
    if reserved < 0 then redis.call('HSET', key, 'r', 0) end
    redis.call('HINCRBY', key, 's', ARGV[3])
    redis.call('PEXPIRE', key, tonumber(ARGV[1]))
  end
end
return 1
"""


class BudgetRefusal(Exception):
    """Redis found the ``index``-th budget of the request spent (with what is reserved in flight)."""

    def __init__(self, index: int, spend: int, reserved: int) -> None:
        super().__init__(f"budget {index} exhausted")
        self.index = index
        self.spend = spend
        self.reserved = reserved


class BudgetAsk:
    """A budget reservation to make in the same script: hashes, ttl and, per hash, max budget and seed."""

    __slots__ = ("amount", "args", "keys", "ttl_ms")

    def __init__(self, keys: list[str], args: list[int], amount: int, ttl_ms: int) -> None:
        self.keys = keys
        self.args = args
        self.amount = amount
        self.ttl_ms = ttl_ms


def _limit(value: int | None) -> int:
    return -1 if value is None else value


class SharedLimiter:
    """Counts in Redis when the shared state has one, else (and during outages) in this process."""

    def __init__(self, scripts: Scripts, local: LocalLimiter | None = None, *, lease: float = DEFAULT_LEASE) -> None:
        self.scripts = scripts
        self.local = local or LocalLimiter()
        self.lease_ms = int(lease * 1000)
        self.prefix = f"{scripts.namespace}:rl:"
        self._admit = scripts.register(ADMIT)
        self._release = scripts.register(RELEASE)
        self._settle = scripts.register(SETTLE)
        self._degraded = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._settles: list[tuple[list[str], list[int]]] = []  # budget settlements waiting for one pipeline
        self._settler: asyncio.Task[None] | None = None

    @property
    def shared(self) -> bool:
        return self.scripts.shared

    async def acquire(self, rules: Sequence[Rule], request_id: str, budget: BudgetAsk | None = None) -> Grant | None:
        """Admit (and count) the request on every rule, and reserve ``budget`` with it, or raise.

        Returns None when there was nothing to do (no rules, and the budget was not reserved because
        Redis is away: the in-process ledger's reservation stands alone). ``Refusal`` for a limit,
        ``BudgetRefusal`` for a budget.
        """
        if not self.scripts.shared:
            self._note_local()
            return self.local.acquire(rules) if rules else None
        # Shielded: a client gone while Redis counted this request must not leave its slots taken.
        task = asyncio.ensure_future(self._acquire_remote(rules, request_id, budget))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_abandoned)
            raise

    async def _acquire_remote(self, rules: Sequence[Rule], request_id: str, budget: BudgetAsk | None) -> Grant | None:
        keys = [self.prefix + rule.key for rule in rules]
        args: list[str | int] = [request_id, self.lease_ms, len(rules)]
        args += (budget.ttl_ms, budget.amount) if budget is not None else (0, 0)
        for rule in rules:
            args += (_limit(rule.rpm), _limit(rule.tpm), _limit(rule.parallel))
        if budget is not None:
            keys += budget.keys
            args += budget.args

        async def local() -> Grant | None:
            self._note_local()
            return self.local.acquire(rules) if rules else None

        result = await self.scripts.run(self._admit, keys, args, local)
        if result is None or isinstance(result, Grant):
            return result
        if self._degraded:
            self._degraded = False
            log.warning("rate limits and budgets are shared across replicas again (Redis is back)")
        values = [int(v) for v in result]
        if values[0] == 1:
            raise Refusal(rules[values[1] - 1], LIMITS[values[2] - 1], values[4], values[3] / 1000)
        if values[0] == 2:
            raise BudgetRefusal(values[1] - 1, values[2], values[3])
        usage = [(values[i], values[i + 1], values[i + 2]) for i in range(2, len(values), 3)]
        grant = Grant(rules, usage, values[1] / 1000, shared=True, request_id=request_id)
        grant.budget = budget
        return grant

    def _release_abandoned(self, task: asyncio.Task[Grant | None]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        grant = task.result()
        if grant is not None:
            self._spawn(self.release(grant, 0))
            if grant.budget is not None:
                self._spawn(self.settle(grant.budget, 0))

    async def release(self, grant: Grant, tokens: int) -> None:
        if not grant.shared:
            self.local.release(grant, tokens)
            return
        if not grant.rules or not self.scripts.shared:
            return  # counted in Redis, which is away: the slots free themselves when their lease ends
        keys = [self.prefix + rule.key for rule in grant.rules]
        held = [1 if rule.parallel is not None else 0 for rule in grant.rules]

        async def dropped() -> None:
            return None

        await self.scripts.run(self._release, keys, [grant.request_id, tokens, *held], dropped)

    async def settle(self, budget: BudgetAsk, cost: int) -> None:
        """Replace a budget reservation by the real cost (integer nano-dollars), now."""

        async def dropped() -> None:
            return None

        await self.scripts.run(self._settle, budget.keys, [budget.ttl_ms, budget.amount, cost], dropped)

    def settle_soon(self, budget: BudgetAsk, cost: int) -> None:
        """``settle``, gathered with the others of the next ``SETTLE_DELAY`` into one pipelined round trip
        (off the request path: the response is already out)."""
        self._settles.append((budget.keys, [budget.ttl_ms, budget.amount, cost]))
        if self._settler is None or self._settler.done():
            self._settler = asyncio.ensure_future(self._settle_pending(SETTLE_DELAY))

    async def _settle_pending(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        while self._settles:
            batch, self._settles = self._settles[:SETTLE_BATCH], self._settles[SETTLE_BATCH:]
            await self.scripts.run_many(self._settle, batch)

    async def flush(self) -> None:
        """Send the settlements still gathered (at shutdown)."""
        if self._settler is not None and not self._settler.done():
            self._settler.cancel()
        await self._settle_pending(0)

    def _note_local(self) -> None:
        if self.scripts.state.distributed and not self._degraded:
            self._degraded = True
            log.warning("Redis is unreachable: rate limits and budgets hold per process until it is back")

    def _spawn(self, work: Awaitable[object]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
