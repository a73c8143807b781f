"""Key lookups cached in process so a request with a known key does no database read.

Entries live ``ttl`` seconds; updates on this replica invalidate them at once (and other replicas'
through the optional invalidation channel). When the database is down or slow, known keys are served
from their entries rather than refused. Unknown keys are remembered briefly so a flood of bad keys
does not become a flood of queries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal

from proxyllm.accounts.ledger import Account, AccountId
from proxyllm.accounts.records import KeyAuth
from proxyllm.accounts.store import aware
from proxyllm.core import clock
from proxyllm.core.errors import ProxyError
from proxyllm.core.jsontypes import JSONValue
from proxyllm.db.database import Database, DatabaseUnavailable
from proxyllm.db.tables import Key, Team, User

log = logging.getLogger("proxyllm.keys")


class KeyCache:
    """``get`` answers from memory for a known key; the database is read when a key is new or stale.

    - An entry is fresh for ``ttl`` seconds. A stale entry is still answered at once while one
      background load refreshes it (one load per key at a time), for at most ``max_stale`` seconds
      past its freshness; after that the request waits for the load.
    - A load waits at most ``load_timeout`` seconds. When it fails or times out, a known key keeps
      working from its entry (an outage must not refuse paying customers); an unknown key gets 503.
    - Loads never wait for the spend writer. The spend a budget sees is the database's plus what this
      replica has not written yet; a load that overlapped a write of that spend reads again (see
      ``load``), so spend is counted once.
    - With ``budgets_at_price``, the spend a budget sees is the account's priced spend (``spend_price``:
      what its requests were charged) instead of its cost (``spend``).
    """

    def __init__(
        self,
        db: Database,
        *,
        ttl: float = 10.0,
        negative_ttl: float = 2.0,
        max_stale: float = 300.0,
        load_timeout: float = 2.0,
        unflushed: Callable[[AccountId, bool], Decimal] = lambda _account, _price: Decimal(0),
        writer_state: Callable[[], tuple[bool, int]] = lambda: (False, 0),
        budgets_at_price: bool = False,
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_stale = max_stale
        self.load_timeout = load_timeout
        self.unflushed = unflushed  # (account, price?) -> what this replica charged it and has not written
        self.budgets_at_price = budgets_at_price
        self.writer_state = writer_state  # (a flush is in progress, flushes of spend so far)
        self._entries: dict[str, tuple[float, KeyAuth | None]] = {}
        self._loading: dict[str, asyncio.Task[KeyAuth | None]] = {}
        self.accounts: dict[AccountId, Account] = {}
        # Called with what this replica invalidated, to tell the others (accounts/invalidation.py).
        self.on_invalidate: Callable[[str | None], None] | None = None

    async def get(self, token: str) -> KeyAuth | None:
        entry = self._entries.get(token)
        now = clock.monotonic()
        if entry is not None:
            fresh_until, record = entry
            if now < fresh_until:
                return record
            if record is not None and now < fresh_until + self.max_stale:
                self._refresh(token)  # answer now, refresh in the background
                return record
        try:
            return await asyncio.shield(self._refresh(token))
        except ProxyError:
            if entry is not None and entry[1] is not None:
                log.warning("database unavailable: serving cached key %s... stale", token[:8])
                return entry[1]
            raise

    def _refresh(self, token: str) -> asyncio.Task[KeyAuth | None]:
        task = self._loading.get(token)
        if task is None:
            task = self._loading[token] = asyncio.get_running_loop().create_task(self._load_and_store(token))
            task.add_done_callback(_retrieve)
        return task

    async def _load_and_store(self, token: str) -> KeyAuth | None:
        try:
            try:
                async with asyncio.timeout(self.load_timeout):
                    record = await self.load(token)
            except TimeoutError:
                raise DatabaseUnavailable(f"no answer within {self.load_timeout:g}s") from None
            if self._loading.get(token) is asyncio.current_task():  # not invalidated while loading
                self._entries[token] = (clock.monotonic() + (self.ttl if record else self.negative_ttl), record)
            return record
        finally:
            if self._loading.get(token) is asyncio.current_task():
                del self._loading[token]

    def invalidate(self, token: str | None = None, *, announce: bool = True) -> None:
        if token is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(token, None)
            self._loading.pop(token, None)
        if announce and self.on_invalidate is not None:
            self.on_invalidate(token)

    async def load(self, token: str) -> KeyAuth | None:
        # The spend writer may commit spend while these rows are read; then the rows and the not-yet-
        # written amounts would count that spend twice. Such a read is done again (a few times; the
        # last one is kept, erring on the side of counting spend).
        for attempt in range(3):
            busy, epoch = self.writer_state()
            rows = await self._read(token)
            busy_after, epoch_after = self.writer_state()
            if (not busy and not busy_after and epoch == epoch_after) or attempt == 2:
                break
            await asyncio.sleep(0.05 * (attempt + 1))
        if rows is None:
            return None
        key, user, team = rows
        return KeyAuth(
            token=key.token,
            key_name=key.key_name,
            key_alias=key.key_alias,
            expires=aware(key.expires),
            deleted=key.deleted_at is not None,
            key=self.account("key", key.token, key),
            user=self.account("user", user.user_id, user) if user else None,
            team=self.account("team", team.team_id, team) if team else None,
            metadata=dict(key.metadata_ or {}),
            tags=list(key.tags or []),
            model_aliases={**team_aliases(team), **key_aliases(key)},  # the key's own win
        )

    async def _read(self, token: str) -> tuple[Key, User | None, Team | None] | None:
        async with self.db.session() as session:
            key = await session.get(Key, token)
            if key is None:
                return None
            user = await session.get(User, key.user_id) if key.user_id else None
            team = await session.get(Team, key.team_id) if key.team_id else None
            return key, user, team

    def account(self, kind: str, ident: str, row: Key | User | Team) -> Account:
        """The one shared Account for this key/user/team, refreshed from its row."""
        account = self.accounts.get((kind, ident))
        if account is None:
            account = self.accounts[(kind, ident)] = Account(kind, ident)
        account.max_budget = row.max_budget
        at_price = self.budgets_at_price
        account.spend = (row.spend_price if at_price else row.spend) + self.unflushed((kind, ident), at_price)
        account.budget_duration = row.budget_duration
        account.reset_at = aware(row.budget_reset_at)
        account.models = list(row.models or [])
        account.blocked = bool(row.blocked)
        account.tpm_limit = row.tpm_limit
        account.rpm_limit = row.rpm_limit
        account.max_parallel_requests = row.max_parallel_requests
        return account


def team_aliases(team: Team | None) -> dict[str, str]:
    """The team's ``model_aliases`` (LiteLLM's team model aliases), kept in its metadata."""
    return _string_map((team.metadata_ or {}).get("model_aliases") if team is not None else None)


def key_aliases(key: Key) -> dict[str, str]:
    """The key's ``aliases`` (LiteLLM's key model aliases), kept in its metadata."""
    return _string_map((key.metadata_ or {}).get("aliases"))


def _string_map(found: JSONValue) -> dict[str, str]:
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def _retrieve(task: asyncio.Task[object]) -> None:
    """A background refresh's failure was logged or answered already; do not report it again."""
    if not task.cancelled():
        task.exception()
