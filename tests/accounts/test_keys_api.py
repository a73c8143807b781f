"""Virtual keys through the admin API and the real OpenAI SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from types import ModuleType

import httpx
import openai
import pytest
from sqlalchemy import select

from proxyllm.db.tables import Key
from tests.accounts.conftest import HI, new_key, sdk
from tests.conftest import ProxyServer, run_in_proxy


async def test_generated_key_works_and_is_stored_only_as_hash(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    created = await new_key(
        shared_admin, key_alias="app-1", models=["gpt-fake"], max_budget=10, tags=["a"], metadata={"owner": "x"}
    )
    raw = created["key"]
    assert raw.startswith("sk-") and len(raw) >= 3 + 32
    assert created["token"] == hashlib.sha256(raw.encode()).hexdigest()
    assert created["key_alias"] == "app-1" and created["models"] == ["gpt-fake"] and created["max_budget"] == 10

    resp = await sdk(shared_proxy, raw).chat.completions.create(model="gpt-fake", messages=HI)
    assert resp.choices[0].message.content

    async def stored() -> list[tuple[object, ...]]:
        async with shared_proxy.runtime.db.session() as session:
            return [tuple(row) for row in (await session.execute(select(Key.__table__))).all()]

    rows = await asyncio.to_thread(run_in_proxy, shared_proxy, stored())
    assert rows and all(raw not in str(value) for row in rows for value in row)


async def test_model_access_is_enforced(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    raw = (await new_key(shared_admin, models=["gpt-fake"]))["key"]
    with pytest.raises(openai.AuthenticationError) as info:  # LiteLLM answers 401 key_model_access_denied
        await sdk(shared_proxy, raw).chat.completions.create(model="llama3", messages=HI)
    assert "Tried to access llama3" in info.value.message and info.value.type == "key_model_access_denied"


async def test_key_info_self_and_others(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    mine = await new_key(shared_admin, key_alias="mine")
    other = await new_key(shared_admin, key_alias="other")
    as_key = {"authorization": f"Bearer {mine['key']}"}
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers=as_key) as client:
        own = await client.get("/key/info")
        assert own.status_code == 200 and own.json()["info"]["key_alias"] == "mine"
        assert (await client.get("/key/info", params={"key": other["key"]})).status_code == 403
        assert (await client.post("/key/generate", json={})).status_code == 403
        assert (await client.get("/key/list")).status_code == 403
    info = await shared_admin.get("/key/info", params={"key": other["token"]})
    assert info.json()["info"]["key_alias"] == "other"


async def test_block_unblock_regenerate_delete(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    key = await new_key(shared_admin, key_alias="cycle")
    client = sdk(shared_proxy, key["key"])
    assert (await shared_admin.post("/key/block", json={"key": key["key"]})).json()["blocked"] is True
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="gpt-fake", messages=HI)
    assert "blocked" in info.value.message
    await shared_admin.post("/key/unblock", json={"key": key["token"]})
    await client.chat.completions.create(model="gpt-fake", messages=HI)

    fresh = (await shared_admin.post("/key/regenerate", json={"key": key["key"]})).json()
    assert fresh["key"] != key["key"] and fresh["key_alias"] == "cycle"
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="gpt-fake", messages=HI)
    await sdk(shared_proxy, fresh["key"]).chat.completions.create(model="gpt-fake", messages=HI)

    deleted = await shared_admin.post("/key/delete", json={"key_aliases": ["cycle"]})
    assert deleted.json()["deleted_keys"] == [fresh["token"]]
    with pytest.raises(openai.AuthenticationError) as info:
        await sdk(shared_proxy, fresh["key"]).chat.completions.create(model="gpt-fake", messages=HI)
    assert "deleted" in info.value.message


async def test_unknown_and_expired_keys(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, clock: ModuleType
) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        await sdk(shared_proxy, "sk-not-a-real-key-at-all").chat.completions.create(model="gpt-fake", messages=HI)
    assert "no such key" in info.value.message
    short = await new_key(shared_admin, duration="1s")
    clock.advance(1.2)
    with pytest.raises(openai.AuthenticationError) as info:
        await sdk(shared_proxy, short["key"]).chat.completions.create(model="gpt-fake", messages=HI)
    assert "expired" in info.value.message


async def test_update_changes_access_at_once(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    key = await new_key(shared_admin)
    client = sdk(shared_proxy, key["key"])
    await client.chat.completions.create(model="llama3", messages=HI)  # cached now
    updated = await shared_admin.post("/key/update", json={"key": key["key"], "models": ["gpt-fake"], "key_alias": "u"})
    assert updated.status_code == 200 and updated.json()["models"] == ["gpt-fake"]
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="llama3", messages=HI)


async def test_list_is_paginated(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    for i in range(5):
        await new_key(shared_admin, key_alias=f"page-{i}", user_id="lister")
    first = (await shared_admin.get("/key/list", params={"page": 1, "size": 2, "user_id": "lister"})).json()
    second = (await shared_admin.get("/key/list", params={"page": 3, "size": 2, "user_id": "lister"})).json()
    assert first["total_count"] == 5 and first["total_pages"] == 3 and len(first["keys"]) == 2
    assert len(second["keys"]) == 1
    full = (await shared_admin.get("/key/list", params={"user_id": "lister", "return_full_object": "true"})).json()
    assert {k["key_alias"] for k in full["keys"]} == {f"page-{i}" for i in range(5)}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_budget": -1}, "max_budget"),
        ({"models": ["no-such-model"]}, "models"),
        ({"duration": "3 weeks"}, "duration"),
        ({"budget_duration": "0d"}, "budget_duration"),
        ({"max_parallel_requests": -1}, "max_parallel_requests"),
        ({"team_id": "no-such-team"}, "team_id"),
        ({"key": "not-a-key"}, "key"),
        ({"tpm_limit": "many"}, "tpm_limit"),
    ],
)
async def test_bad_admin_input_is_400_naming_the_field(
    shared_admin: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    resp = await shared_admin.post("/key/generate", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == field or field in error["message"]


async def test_alias_must_be_unique(shared_admin: httpx.AsyncClient) -> None:
    await new_key(shared_admin, key_alias="same")
    resp = await shared_admin.post("/key/generate", json={"key_alias": "same"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "key_alias"


async def test_request_fallbacks_cannot_reach_other_models(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: object
) -> None:
    raw = (await new_key(shared_admin, models=["gpt-fake"]))["key"]
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {raw}"}) as client:
        body = {"model": "gpt-fake", "messages": HI, "fallbacks": ["llama3"]}
        resp = await client.post("/v1/chat/completions", json=body)
        assert resp.status_code == 401 and resp.json()["error"]["param"] == "fallbacks"
        assert resp.json()["error"]["type"] == "key_model_access_denied"
        assert "llama3" in resp.json()["error"]["message"]
        ok = await client.post("/v1/chat/completions", json={**body, "fallbacks": ["gpt-fake"]})
        assert ok.status_code == 200
