"""Stored responses in the database: one row per response, visible only to the key that made it.

A row keeps the Response object, the request's own input items (``GET .../input_items``) and the whole
conversation the response was made from, so ``previous_response_id`` rebuilds the next turn's input
with one read. Rows expire after ``general_settings.responses_retention_days``; expired rows are
never answered and are deleted in passing, at most once an hour.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.db.database import Database
from proxyllm.db.tables_responses import StoredResponse

log = logging.getLogger("proxyllm.responses")
PURGE_EVERY = 3600.0


def owner_of(principal: Principal | None) -> str:
    """Who a stored response belongs to: the virtual key (by its hash), the master key, or an open proxy."""
    if principal is None:
        return "open"
    if principal.key_hash:
        return "key:" + principal.key_hash
    return "master" if principal.is_admin else principal.kind[:32]


def not_found(response_id: str) -> ProxyError:
    return ProxyError(
        ErrorKind.NOT_FOUND, f"Response with id '{response_id[:160]}' not found.", param="response_id", code=None
    )


def _column(value: JSONValue, size: int) -> str:
    """A string column's value: bounded, and without NUL (PostgreSQL's text refuses it). The JSON
    columns need nothing: orjson writes control characters escaped."""
    return str(value).replace("\x00", "")[:size]


class Stored:
    __slots__ = ("conversation", "input_items", "response")

    def __init__(self, row: StoredResponse) -> None:
        self.response: JSONObject = orjson.loads(row.response)
        self.input_items: list[JSONObject] = orjson.loads(row.input_items)
        self.conversation: list[JSONObject] = orjson.loads(row.conversation)


class ResponseStore:
    def __init__(self, db: Database, retention_days: float | None) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days) if retention_days else None
        self._purged = 0.0

    async def save(
        self,
        *,
        owner: str,
        response: JSONObject,
        input_items: list[JSONObject],
        conversation: list[JSONObject],
    ) -> None:
        now = datetime.now(UTC)
        previous = response.get("previous_response_id")
        row = StoredResponse(
            id=_column(response["id"], 160),
            owner=_column(owner, 80),
            model=_column(response.get("model") or "", 256),
            status=_column(response.get("status") or "", 16),
            previous_response_id=_column(previous, 160) if isinstance(previous, str) else None,
            input_items=orjson.dumps(input_items).decode(),
            conversation=orjson.dumps(conversation).decode(),
            response=orjson.dumps(response).decode(),
            created_at=now,
            expires_at=now + self.retention if self.retention else None,
        )
        try:
            async with self.db.session() as session:
                session.add(row)  # never replaces a row
        except IntegrityError:  # e.g. a cached passthrough stream replayed with its upstream's id
            log.warning("response %s is stored already; this copy is not stored", row.id)
            return
        if self.retention and time.monotonic() - self._purged > PURGE_EVERY:
            self._purged = time.monotonic()
            await self.purge()

    async def get(self, owner: str, response_id: str) -> Stored:
        now = datetime.now(UTC)
        async with self.db.session() as session:
            row = await session.scalar(
                select(StoredResponse).where(
                    StoredResponse.id == response_id,
                    StoredResponse.owner == owner,
                    or_(StoredResponse.expires_at.is_(None), StoredResponse.expires_at > now),
                )
            )
        if row is None:
            raise not_found(response_id)
        return Stored(row)

    async def delete(self, owner: str, response_id: str) -> None:
        async with self.db.session() as session:
            result = await session.execute(
                delete(StoredResponse).where(StoredResponse.id == response_id, StoredResponse.owner == owner)
            )
        if not getattr(result, "rowcount", 0):
            raise not_found(response_id)

    async def purge(self) -> int:
        try:
            async with self.db.session() as session:
                result = await session.execute(
                    delete(StoredResponse).where(StoredResponse.expires_at <= datetime.now(UTC))
                )
        except Exception:
            log.exception("could not delete expired stored responses")
            return 0
        return int(getattr(result, "rowcount", 0) or 0)
