"""End users on the request path: who the request is for, their limits, their spend.

A request names its end user the way LiteLLM reads it (``end_user_id``): the header
``x-litellm-customer-id`` or ``x-litellm-end-user-id``, else the body's ``user``, else
``litellm_metadata.user``, else ``metadata.user_id``, else ``safety_identifier``. The id must be a
string of at most 255 characters without NUL (else 400).

``EndUserHook`` then loads the end user (cached in process, ``ttl`` seconds), refuses a blocked one
(LiteLLM's 400 "User blocked from making LLM API Calls"), and puts its ``Account`` in
``ctx.get(END_USER)``: the rate-limit rules (``limits/rules.py``) and the budget reservation
(``accounts/hooks.py``) treat it like the key's, user's and team's accounts, so its budget holds
under concurrency the same way and its spend is written by the spend writer (an end user not yet
in the table gets a row with its first spend, as LiteLLM does).

An end user's limits come from the budget it points at (``budget_id``). Changes through the admin
API take effect at once on the replica that made them and within ``ttl`` on the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.accounts.durations import next_reset
from proxyllm.accounts.ledger import Account, AccountId
from proxyllm.accounts.store import aware
from proxyllm.core.context import CURRENT_SCOPE, RequestContext, Slot
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.hooks import Hook
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.db.database import Database
from proxyllm.db.tables_budgets import Budget, EndUser

END_USER: Slot[Account] = Slot("end_user")  # the request's end-user Account
KIND = "end_user"  # Account.kind of end users (and the spend writer's charge kind)
HEADERS = (b"x-litellm-customer-id", b"x-litellm-end-user-id")
MAX_ID = 255
MAX_ENTRIES = 50_000  # end users remembered in process; the idle ones are dropped past this


def _checked(value: JSONValue, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_request(f"'{param}' (the end user id) must be a string", param=param)
    if not value.strip():
        return None
    if len(value) > MAX_ID or "\x00" in value:
        raise invalid_request(f"'{param}' must be at most {MAX_ID} characters, without NUL", param=param)
    return value


def _header(headers: Iterable[tuple[bytes, bytes]] | None) -> str | None:
    if not headers:
        return None
    for name, value in headers:
        if name in HEADERS:  # ASGI header names are lower case
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid_request(f"header '{name.decode('latin-1')}' is not UTF-8") from None
            found = _checked(text, name.decode("latin-1").lower())
            if found is not None:
                return found
    return None


def end_user_id(
    body: JSONObject, options: JSONObject, headers: Iterable[tuple[bytes, bytes]] | None
) -> str | None:
    """The request's end user, where LiteLLM looks for it (first found wins). ``options`` are the
    proxy-only fields taken out of the body (``metadata``, ``litellm_metadata``: core/requests.py)."""
    found = _header(headers)
    if found is not None:
        return found
    if body.get("user") is not None:
        return _checked(body["user"], "user")
    meta = options.get("litellm_metadata")
    if isinstance(meta, dict) and meta.get("user") is not None:
        return _checked(meta["user"], "litellm_metadata.user")
    meta = options.get("metadata")
    if isinstance(meta, dict) and meta.get("user_id") is not None:
        return _checked(meta["user_id"], "metadata.user_id")
    if body.get("safety_identifier") is not None:
        return _checked(body["safety_identifier"], "safety_identifier")
    return None


def request_headers(ctx: RequestContext) -> Iterable[tuple[bytes, bytes]] | None:
    scope = CURRENT_SCOPE.get()
    if scope is not None:
        return scope.get("headers")
    raw = ctx.request_headers
    if isinstance(raw, Mapping):
        return [(str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in raw.items()]
    return raw


class EndUsers:
    """End-user accounts cached in process; spend written by the spend writer (``charge``)."""

    def __init__(
        self,
        db: Database,
        *,
        ttl: float = 10.0,
        unflushed: Callable[[AccountId], Decimal] = lambda _: Decimal(0),
        writer_state: Callable[[], tuple[bool, int]] = lambda: (False, 0),
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.unflushed = unflushed  # (kind, id) -> spend this replica has not written yet
        self.writer_state = writer_state  # (a flush is in progress, flushes of spend so far): see _read
        self.accounts: dict[str, Account] = {}
        self._fresh: dict[str, float] = {}
        self._loading: dict[str, asyncio.Task[Account]] = {}

    async def get(self, user_id: str) -> Account:
        account = self.accounts.get(user_id)
        if account is not None and time.monotonic() < self._fresh.get(user_id, 0.0):
            return account
        task = self._loading.get(user_id)
        if task is None:
            task = self._loading[user_id] = asyncio.get_running_loop().create_task(self._load(user_id))
        try:
            return await asyncio.shield(task)
        except ProxyError:
            if account is not None:  # the database is away: the last known limits still hold
                return account
            raise

    async def _load(self, user_id: str) -> Account:
        try:
            async with asyncio.timeout(2.0):
                row, budget = await self._read(user_id)
        except TimeoutError:
            raise ProxyError(
                ErrorKind.UNAVAILABLE, "the database did not answer within 2s; try again shortly"
            ) from None
        finally:
            self._loading.pop(user_id, None)
        if len(self.accounts) >= MAX_ENTRIES:
            self._prune()
        account = self.accounts.get(user_id)
        if account is None:
            account = self.accounts[user_id] = Account(KIND, user_id)
        self.refresh(account, row, budget)
        self._fresh[user_id] = time.monotonic() + self.ttl
        return account

    async def _read(self, user_id: str) -> tuple[EndUser | None, Budget | None]:
        """The rows; read again when the spend writer committed meanwhile, so that the spend it wrote
        is not counted twice (once in the row, once as not yet written), as accounts/cache.py does."""
        for attempt in range(3):
            busy, epoch = self.writer_state()
            async with self.db.session() as session:
                row = await session.get(EndUser, user_id)
                budget = await session.get(Budget, row.budget_id) if row and row.budget_id else None
            busy_after, epoch_after = self.writer_state()
            if not busy and not busy_after and epoch == epoch_after:
                break
            if attempt < 2:
                await asyncio.sleep(0.05 * (attempt + 1))
        return row, budget

    def refresh(self, account: Account, row: EndUser | None, budget: Budget | None) -> None:
        account.spend = (row.spend if row is not None else Decimal(0)) + self.unflushed(account.key)
        account.blocked = bool(row.blocked) if row is not None else False
        account.max_budget = budget.max_budget if budget else None
        account.budget_duration = budget.budget_duration if budget else None
        account.reset_at = aware(budget.budget_reset_at) if budget else None
        account.tpm_limit = budget.tpm_limit if budget else None
        account.rpm_limit = budget.rpm_limit if budget else None
        account.max_parallel_requests = budget.max_parallel_requests if budget else None

    def _prune(self) -> None:
        """Forget idle end users (nothing reserved), oldest first, down to half the limit."""
        for user_id in list(self.accounts):
            if len(self.accounts) < MAX_ENTRIES // 2:
                return
            if not self.accounts[user_id].reserved:
                del self.accounts[user_id]
                self._fresh.pop(user_id, None)

    def invalidate(self, user_ids: Iterable[str] | None = None) -> None:
        """Read these end users (all when None) again at their next request."""
        if user_ids is None:
            self._fresh.clear()
            return
        for user_id in user_ids:
            self._fresh.pop(user_id, None)

    # -- the spend writer's side -----------------------------------------------------------------

    async def write_charge(self, session: AsyncSession, user_id: str, amount: Decimal) -> None:
        """Add spend to an end user, creating its row with that spend if it has none yet."""
        dialect = sqlite if self.db.sqlite else postgresql
        table = EndUser.__table__
        insert = dialect.insert(table).values(user_id=user_id, spend=amount, blocked=False, metadata={})
        await session.execute(
            insert.on_conflict_do_update(index_elements=["user_id"], set_={"spend": table.c.spend + amount})
        )

    async def reset_budgets(self, session: AsyncSession, moment: datetime | None = None) -> int:
        """Start a new period for every budget whose reset time passed: its end users' spend goes to
        zero. The budget row's conditional update makes this safe on several replicas at once."""
        moment = moment or datetime.now(UTC)
        due = (
            await session.execute(
                select(Budget.budget_id, Budget.budget_duration, Budget.budget_reset_at).where(
                    Budget.budget_reset_at <= moment, Budget.budget_duration.is_not(None)
                )
            )
        ).all()
        count = 0
        for budget_id, duration, reset_at in due:
            if duration is None:
                continue
            following = next_reset(moment, duration, aware(reset_at))
            moved = await session.execute(
                update(Budget)
                .where(Budget.budget_id == budget_id, Budget.budget_reset_at == reset_at)
                .values(budget_reset_at=following)
            )
            if int(getattr(moved, "rowcount", 0) or 0):
                result = await session.execute(
                    update(EndUser).where(EndUser.budget_id == budget_id).values(spend=Decimal(0))
                )
                count += int(getattr(result, "rowcount", 0) or 0)
        if due:
            self.invalidate()
        return count


class EndUserHook(Hook):
    """Resolves the request's end user; refuses a blocked one or one whose budget is spent."""

    name = "end_users"

    def __init__(self, end_users: EndUsers) -> None:
        self.end_users = end_users

    async def before_call(self, ctx: RequestContext) -> None:
        user_id = end_user_id(ctx.body, ctx.options or {}, request_headers(ctx))
        if user_id is None:
            return
        account = await self.end_users.get(user_id)
        if account.blocked:
            raise invalid_request(f"User blocked from making LLM API Calls. User={user_id}")
        ctx.put(END_USER, account)


def end_user_account(ctx: RequestContext) -> Account | None:
    account = ctx.get(END_USER)
    return account
