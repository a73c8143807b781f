"""One admin change = one unit of work: one transaction for the change, its billing link and its audit
row; caches are told only after the commit. Nothing is written if any step fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from proxyllm.admin.permissions import Actor
from proxyllm.errors import invalid_request
from proxyllm.ops import audit

if TYPE_CHECKING:
    from proxyllm.server.runtime import Runtime


class Unit:
    """The open transaction of one admin call, and what to do once it has committed."""

    def __init__(self, runtime: Runtime, request: HTTPConnection | None, actor: Actor, session: AsyncSession) -> None:
        self.runtime = runtime
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
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
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
        billing = self.runtime.billing
        if customer_id is None or billing is None:
            return
        if not await billing.api.retrieve_customer(customer_id):
            raise invalid_request(f"Stripe has no customer '{customer_id}'", param="stripe_customer_id")
        row = await billing.ledger.get(self.session, account)
        row.stripe_customer_id = customer_id
        self.after_commit(lambda: billing.forget(account))

    def _committed(self) -> None:
        keys = self.runtime.keys
        if self._everything:
            keys.invalidate()
        else:
            for token in self._tokens:
                keys.invalidate(token)
        for action in self._after:
            action()


@asynccontextmanager
async def unit_of_work(runtime: Runtime, request: HTTPConnection | None, actor: Actor) -> AsyncIterator[Unit]:
    """``async with unit_of_work(...) as unit``: commits on success; a unique-key race (a concurrent call
    created the same record) is a 400 naming the conflict, never a 500."""
    try:
        async with runtime.db.session() as session:
            unit = Unit(runtime, request, actor, session)
            yield unit
    except IntegrityError:
        raise invalid_request(
            "this change conflicts with a concurrent one (the record was created or changed meanwhile); retry"
        ) from None
    unit._committed()
