"""The response store on its own: owners, retention and the purge of expired rows (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from proxyllm.core.context import Principal
from proxyllm.core.errors import ProxyError
from proxyllm.db.database import Database
from proxyllm.db.migrate import upgrade
from proxyllm.db.tables_responses import StoredResponse
from proxyllm.db.url import to_async_url
from proxyllm.frontends.responses.store import ResponseStore, owner_of


def response(rid: str) -> dict[str, Any]:
    return {"id": rid, "object": "response", "status": "completed", "model": "m\x00", "output": []}


async def test_retention_and_purge(database_url: str) -> None:
    db = Database(to_async_url(database_url))
    await upgrade(db)
    try:
        store = ResponseStore(db, retention_days=1)
        items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a\x00b"}]}]
        await store.save(owner="key:a", response=response("resp_old"), input_items=items, conversation=items)
        await store.save(owner="key:a", response=response("resp_new"), input_items=items, conversation=items)
        got = await store.get("key:a", "resp_new")
        assert got.input_items == items and got.response["model"] == "m\x00"
        with pytest.raises(ProxyError) as other:
            await store.get("key:b", "resp_new")
        assert other.value.status == 404
        async with db.session() as session:
            past = datetime.now(UTC) - timedelta(seconds=1)
            await session.execute(update(StoredResponse).where(StoredResponse.id == "resp_old").values(expires_at=past))
        with pytest.raises(ProxyError):
            await store.get("key:a", "resp_old")  # expired: never answered, even before the purge
        assert await store.purge() == 1
        assert (await store.get("key:a", "resp_new")).response["id"] == "resp_new"
        forever = ResponseStore(db, retention_days=None)
        await forever.save(owner="master", response=response("resp_kept"), input_items=[], conversation=[])
        assert (await forever.get("master", "resp_kept")).response["id"] == "resp_kept"
    finally:
        await db.close()


def test_owners() -> None:
    assert owner_of(None) == "open"
    assert owner_of(Principal("key", key_hash="ab" * 32)) == "key:" + "ab" * 32
    assert owner_of(Principal("master", is_admin=True)) == "master"
