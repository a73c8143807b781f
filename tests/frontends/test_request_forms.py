"""Azure's path form with the real AzureOpenAI client, batch completion over a comma-separated model,
team model aliases, and the x-litellm-tags header."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import key_client

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
async def fakes() -> AsyncIterator[list[FakeOpenAI]]:
    """The module's two fakes (what each was sent is reset after every test)."""
    made = [FakeOpenAI(), FakeOpenAI()]
    for fake in made:
        await fake.start()
    yield made
    for fake in made:
        await fake.stop()


@pytest.fixture(autouse=True)
def _reset_fakes_here(fakes: list[FakeOpenAI]) -> Iterator[None]:
    yield
    for fake in fakes:
        fake.reset()


@pytest.fixture(scope="module")
async def proxy(module_proxy_factory: Any, fakes: list[FakeOpenAI]) -> ProxyServer:
    """One proxy for the module: each case makes keys and teams of its own and reads only their spend."""
    one, two = fakes

    def entry(name: str, fake: FakeOpenAI, **params: Any) -> dict[str, Any]:
        base = {"model": "openai/gpt-fake", "api_base": fake.api_base, "api_key": "sk-up"}
        return {"model_name": name, "litellm_params": {**base, **params}}

    text = yaml.safe_dump(
        {
            "model_list": [
                entry("gpt-4o", one, input_cost_per_token=0.000001, output_cost_per_token=0.000002),
                entry("llama3", two, input_cost_per_token=0.000001),
                entry("embed", one, model="openai/embed-fake"),
                entry("images", one, model="openai/dall-e-3", output_cost_per_image=0.04),
                entry("tagged", one, tags=["east"]),
                entry("tagged", two, tags=["west"]),
            ],
            "router_settings": {"enable_tag_filtering": True},
            "general_settings": {"master_key": MASTER_KEY},
        }
    )
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text)
    return server


async def test_azure_clients_call_the_proxy_with_a_virtual_key(proxy: ProxyServer, fakes: list[FakeOpenAI]) -> None:
    async with key_client(proxy) as c:
        key = (await c.post("/key/generate", json={"models": ["gpt-4o", "embed", "images"]})).json()["key"]
    azure = openai.AsyncAzureOpenAI(azure_endpoint=proxy.url, api_key=key, api_version="2024-10-21", max_retries=0)
    try:
        raw = await azure.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)
        assert raw.http_request.headers["api-key"] == key  # Azure's header, read by the proxy
        assert raw.http_request.url.path == "/openai/deployments/gpt-4o/chat/completions"
        assert raw.parse().choices[0].message.content and raw.headers["x-litellm-model-group"] == "gpt-4o"
        assert fakes[0].requests[-1].body["model"] == "gpt-fake"
        embedding = await azure.embeddings.create(model="embed", input=["a", "b"])
        assert len(embedding.data) == 2
        images = await azure.images.generate(model="images", prompt="a fox", n=2)
        assert len(images.data or []) == 2
        with pytest.raises(openai.AuthenticationError):  # the key's model list applies on this path too
            await azure.chat.completions.create(model="llama3", messages=HI)
    finally:
        await azure.close()
    bad = openai.AsyncAzureOpenAI(azure_endpoint=proxy.url, api_key="sk-wrong", api_version="2024-10-21", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(model="gpt-4o", messages=HI)
    finally:
        await bad.close()


async def test_a_comma_separated_model_asks_each_model_and_charges_each(
    proxy: ProxyServer, fakes: list[FakeOpenAI]
) -> None:
    async with key_client(proxy) as c:
        key = (await c.post("/key/generate", json={"models": ["gpt-4o", "llama3"]})).json()["key"]
        only_one = (await c.post("/key/generate", json={"models": ["gpt-4o"]})).json()["key"]
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=proxy.url, headers=headers, timeout=30) as c:
        resp = await c.post("/v1/chat/completions", json={"model": "gpt-4o,llama3", "messages": HI})
        assert resp.status_code == 200, resp.text
        answers = resp.json()
        assert [a["object"] for a in answers] == ["chat.completion", "chat.completion"]
        assert len(fakes[0].requests) == 1 and len(fakes[1].requests) == 1
        fastest = await c.post(
            "/v1/chat/completions", json={"model": "gpt-4o,llama3", "messages": HI, "fastest_response": True}
        )
        assert fastest.json()["object"] == "chat.completion"
        assert "fastest_response" not in fakes[0].requests[-1].body
        streamed = await c.post("/v1/chat/completions", json={"model": "gpt-4o,llama3", "messages": HI, "stream": True})
        assert streamed.status_code == 400
        too_many = await c.post("/v1/chat/completions", json={"model": ",".join(["gpt-4o"] * 11), "messages": HI})
        assert too_many.status_code == 400
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    async with key_client(proxy) as c:
        rows = (await c.get("/spend/logs", params={"api_key": key})).json()
        assert sorted(r["model_group"] for r in rows[-2:]) == ["gpt-4o", "llama3"] or len(rows) >= 4
        assert {r["model_group"] for r in rows} == {"gpt-4o", "llama3"}
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {only_one}"}) as c:
        answers = (await c.post("/v1/chat/completions", json={"model": "gpt-4o,llama3", "messages": HI})).json()
        assert answers[0]["object"] == "chat.completion"
        assert answers[1]["error"]["type"] == "key_model_access_denied"  # each model is its own call


async def test_team_model_aliases_route_and_are_listed(proxy: ProxyServer, fakes: list[FakeOpenAI]) -> None:
    async with key_client(proxy) as c:
        team = await c.post("/team/new", json={"team_id": "t-alias", "model_aliases": {"my-model": "llama3"}})
        assert team.status_code == 200, team.text
        key = (await c.post("/key/generate", json={"team_id": "t-alias"})).json()["key"]
        bad = await c.post("/team/new", json={"team_id": "t-bad", "model_aliases": {"x": "y" * 300}})
        assert bad.status_code in (400, 422)
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(model="my-model", messages=HI)
    assert raw.headers["x-litellm-model-group"] == "llama3" and len(fakes[1].requests) == 1
    listed = [m.id for m in (await client.models.list()).data]
    assert "my-model" in listed and "llama3" in listed
    master = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError):  # the alias is the team's, not everyone's
        await master.chat.completions.create(model="my-model", messages=HI)


async def test_the_tags_header_routes_like_metadata_tags(proxy: ProxyServer, fakes: list[FakeOpenAI]) -> None:
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    for _ in range(4):
        await client.chat.completions.create(model="tagged", messages=HI, extra_headers={"x-litellm-tags": "west"})
    assert len(fakes[1].requests) == 4 and not fakes[0].requests
    for _ in range(3):
        await client.chat.completions.create(model="tagged", messages=HI, extra_headers={"x-litellm-tags": "east , x"})
    assert len(fakes[0].requests) == 3
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="tagged", messages=HI, extra_headers={"x-litellm-tags": ",".join(f"t{i}" for i in range(40))}
        )
