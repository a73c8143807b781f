"""One admin change = one unit of work: one transaction for the change, its billing link and its audit
row; caches are told only after the commit. Nothing is written if any step fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from proxyllm.accounts.cache import KeyCache
from proxyllm.admin.permissions import Actor
from proxyllm.billing.service import Billing
from proxyllm.core.errors import invalid_request
from proxyllm.db.database import Database
from proxyllm.ops import audit


@dataclass(slots=True, frozen=True)
class AdminParts:
    """What the admin services use of the proxy: the database, the key cache, billing (when on), and
    the check that every model named is one the proxy serves."""

    db: Database
    keys: KeyCache
    billing: Billing | None
    check_models: Callable[[list[str] | None, str], None]


class Unit:
    """The open transaction of one admin call, and what to do once it has committed."""

    def __init__(self, parts: AdminParts, request: HTTPConnection | None, actor: Actor, session: AsyncSession) -> None:
        self.parts = parts
        self.request = request
        self.actor = actor
        self.session = session
        self._after: list[Callable[[], None]] = []
        self._tokens: set[str] = set()
        self._everything = False

    async def audit(
        self,
        action: str,
        target: str | None,
        *,
        before: Mapping[str, object] | None = None,
        after: Mapping[str, object] | None = None,
    ) -> None:
        await audit.record(
            self.session, self.request, self.actor.principal, action=action, target=target, before=before, after=after
        )

    def invalidate(self, token: str | None = None) -> None:
        """Forget a cached key (None: every key, e.g. after a user or team changed) once committed."""
        if token is None:
            self._everything = True
        else:
            self._tokens.add(token)

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after.append(action)

    async def link_billing(self, account: tuple[str, str], customer_id: str | None) -> None:
        """Link the account's billing to an existing Stripe customer, in this transaction."""
        billing = self.parts.billing
        if customer_id is None or billing is None:
            return
        if not await billing.api.retrieve_customer(customer_id):
            raise invalid_request(f"Stripe has no customer '{customer_id}'", param="stripe_customer_id")
        row = await billing.ledger.get(self.session, account)
        row.stripe_customer_id = customer_id
        self.after_commit(lambda: billing.forget(account))

    def _committed(self) -> None:
        keys = self.parts.keys
        if self._everything:
            keys.invalidate()
        else:
            for token in self._tokens:
                keys.invalidate(token)
        for action in self._after:
            action()


@asynccontextmanager
async def unit_of_work(parts: AdminParts, request: HTTPConnection | None, actor: Actor) -> AsyncIterator[Unit]:
    """``async with unit_of_work(...) as unit``: commits on success; a unique-key race (a concurrent call
    created the same record) is a 400 naming the conflict, never a 500."""
    try:
        async with parts.db.session() as session:
            unit = Unit(parts, request, actor, session)
            yield unit
    except IntegrityError:
        raise invalid_request(
            "this change conflicts with a concurrent one (the record was created or changed meanwhile); retry"
        ) from None
    unit._committed()
