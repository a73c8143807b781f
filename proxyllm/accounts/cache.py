"""Key lookups cached in process so a request with a known key does no database read.

Entries live ``ttl`` seconds; updates on this replica invalidate them at once (and other replicas'
through the optional invalidation channel). When the database is down, expired entries are served
stale rather than refusing known keys. Unknown keys are remembered briefly so a flood of bad keys
does not become a flood of queries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from proxyllm.accounts.ledger import Account, AccountId
from proxyllm.accounts.records import KeyAuth
from proxyllm.accounts.store import aware
from proxyllm.db.database import Database
from proxyllm.db.tables import Key, Team, User
from proxyllm.errors import ProxyError

log = logging.getLogger("proxyllm.keys")
MISSING = object()


class KeyCache:
    def __init__(
        self,
        db: Database,
        *,
        ttl: float = 10.0,
        negative_ttl: float = 2.0,
        unflushed: Callable[[AccountId], Decimal] = lambda _: Decimal(0),
        lock: asyncio.Lock | None = None,
    ) -> None:
        self.db = db
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.unflushed = unflushed
        self.lock = lock or asyncio.Lock()  # shared with the spend writer's flush: see load()
        self._entries: dict[str, tuple[float, KeyAuth | None]] = {}
        self.accounts: dict[AccountId, Account] = {}
        # Called with what this replica invalidated, to tell the others (accounts/invalidation.py).
        self.on_invalidate: Callable[[str | None], None] | None = None

    async def get(self, token: str) -> KeyAuth | None:
        entry = self._entries.get(token)
        now = time.monotonic()
        if entry is not None and now < entry[0]:
            return entry[1]
        try:
            record = await self.load(token)
        except ProxyError:
            if entry is not None and entry[1] is not None:
                log.warning("database unavailable: serving cached key %s... stale", token[:8])
                self._entries[token] = (now + min(self.ttl, 5.0), entry[1])  # ask again later, not per request
                return entry[1]
            raise
        self._entries[token] = (now + (self.ttl if record else self.negative_ttl), record)
        return record

    def invalidate(self, token: str | None = None, *, announce: bool = True) -> None:
        if token is None:
            self._entries.clear()
        else:
            self._entries.pop(token, None)
        if announce and self.on_invalidate is not None:
            self.on_invalidate(token)

    async def load(self, token: str) -> KeyAuth | None:
        # Under the writer's lock: the rows read and the not-yet-written deltas are one consistent view.
        async with self.lock, self.db.session() as session:
            key = await session.get(Key, token)
            if key is None:
                return None
            user = await session.get(User, key.user_id) if key.user_id else None
            team = await session.get(Team, key.team_id) if key.team_id else None
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
            )

    def account(self, kind: str, ident: str, row: Any) -> Account:
        """The one shared Account for this key/user/team, refreshed from its row."""
        account = self.accounts.get((kind, ident))
        if account is None:
            account = self.accounts[(kind, ident)] = Account(kind, ident)
        account.max_budget = row.max_budget
        account.spend = row.spend + self.unflushed((kind, ident))
        account.budget_duration = row.budget_duration
        account.reset_at = aware(row.budget_reset_at)
        account.models = list(row.models or [])
        account.blocked = bool(row.blocked)
        account.tpm_limit = row.tpm_limit
        account.rpm_limit = row.rpm_limit
        account.max_parallel_requests = row.max_parallel_requests
        return account
