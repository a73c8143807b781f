"""Responses API with virtual keys, on SQLite and PostgreSQL: stored per key, logged, billed.

The ``shared_proxy`` fixture (one per module; each test's keys are its own) runs on both databases, so
migration 0018 and the stored rows are tested on each (PostgreSQL refuses NUL bytes in text: a NUL in the
input must still be stored and read back).
"""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.accounts.conftest import new_key, sdk
from tests.accounts.test_spend import logs
from tests.conftest import ProxyServer


async def test_stored_response_belongs_to_its_key(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    alice = sdk(shared_proxy, (await new_key(shared_admin, key_alias="alice"))["key"])
    bob = sdk(shared_proxy, (await new_key(shared_admin, key_alias="bob"))["key"])
    made = await alice.responses.create(model="llama3", input="secret \x00 plans")
    assert (await alice.responses.retrieve(made.id)).output_text == made.output_text
    items = await alice.responses.input_items.list(made.id)
    assert items.data[0].content[0].text == "secret \x00 plans"  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError):
        await bob.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        await bob.responses.input_items.list(made.id)
    with pytest.raises(openai.NotFoundError):
        await bob.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        await bob.responses.create(model="llama3", input="go on", previous_response_id=made.id)
    await alice.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        await alice.responses.retrieve(made.id)


async def test_responses_are_logged_and_billed(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    key = await new_key(shared_admin, key_alias="responder")
    client = sdk(shared_proxy, key["key"])
    await client.responses.create(model="gpt-fake", input="hi")
    stream = await client.responses.create(model="llama3", input="hi", stream=True)
    async for _ in stream:
        pass
    rows = await logs(shared_admin, shared_proxy, api_key=key["key"])
    assert sorted(r["call_type"] for r in rows) == ["responses", "responses"]
    by_group = {r["model_group"]: r for r in rows}
    assert by_group["gpt-fake"]["spend"] > 0 and by_group["gpt-fake"]["completion_tokens"] == 5
    assert by_group["llama3"]["stream"] and by_group["llama3"]["completion_tokens"] == 5
    info = await shared_admin.get("/key/info", params={"key": key["key"]})
    assert info.json()["info"]["spend"] > 0


async def test_count_tokens_runs_through_the_hooks(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    key = await new_key(shared_admin, key_alias="counter", models=["llama3"])
    headers = {"x-api-key": key["key"], "anthropic-version": "2023-06-01"}
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hello there"}]}
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers=headers, timeout=30) as client:
        counted = await client.post("/v1/messages/count_tokens", json=body)
        assert counted.status_code == 200, counted.text
        assert counted.json()["estimated"] is True and counted.headers["x-proxyllm-token-count"] == "estimate"
        refused = await client.post("/v1/messages/count_tokens", json={**body, "model": "gpt-fake"})
        assert refused.status_code == 401 and refused.json()["type"] == "error"  # key_model_access_denied
    rows = await logs(shared_admin, shared_proxy, api_key=key["key"])
    assert [r["call_type"] for r in rows if r["status"] == "success"] == ["count_tokens"]
