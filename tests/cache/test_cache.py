"""The response cache: hits and misses, per-request controls, streaming replay, what never shares an entry."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.limits.conftest import HI, eventually, limits_config, new_key, start

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def cache_config(openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, **params: Any) -> str:
    litellm = {"cache": True, "cache_params": {"type": "local", **params}}
    router = {"model_group_alias": {"gpt-alias": "gpt-fake"}}
    return limits_config(openai_upstream, ollama_upstream, litellm=litellm, router=router)


@pytest.fixture
async def proxy(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    return await start(proxy_factory, cache_config(openai_upstream, ollama_upstream))


@pytest.fixture(scope="module")
async def shared_proxy(
    module_proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    """One proxy for the cases that assert nothing about what is cached (refusals of cache controls); the
    others count hits and misses, so each has its own cache."""
    return await start(module_proxy_factory, cache_config(openai_upstream, ollama_upstream))


async def chat(http: httpx.AsyncClient, *, key: str | None = None, **body: Any) -> httpx.Response:
    payload = {"model": "gpt-fake", "messages": HI, **body}
    headers = {"authorization": f"Bearer {key}"} if key else None
    resp = await http.post("/v1/chat/completions", json=payload, headers=headers)
    return resp


async def spend_rows(proxy: ProxyServer, http: httpx.AsyncClient) -> list[dict[str, Any]]:
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    resp = await http.get("/spend/logs")
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


async def test_a_repeated_request_is_answered_from_the_cache_for_free(
    proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    first = await chat(http)
    assert first.status_code == 200 and "x-litellm-cache-key" not in first.headers
    assert first.headers["x-litellm-response-cost"] == "0.000011"
    second = await chat(http)
    assert second.status_code == 200
    assert len(openai_upstream.requests) == 1
    assert second.content == first.content
    assert len(second.headers["x-litellm-cache-key"]) == 64
    assert second.headers["x-litellm-response-cost"] == "0"
    rows = {r["request_id"]: r for r in await spend_rows(proxy, http)}
    hit = rows[second.headers["x-litellm-call-id"]]
    miss = rows[first.headers["x-litellm-call-id"]]
    assert hit["cache_hit"] is True and hit["spend"] == 0 and hit["model_group"] == "gpt-fake"
    assert hit["prompt_tokens"] == 1 and hit["completion_tokens"] == 5
    assert miss["cache_hit"] is False and miss["spend"] == 0.000011


async def test_different_requests_never_share_an_entry(
    proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    variants: list[dict[str, Any]] = [
        {},
        {"temperature": 0.5},
        {"temperature": 0.7},
        {"max_tokens": 5},
        {"top_p": 0.9},
        {"seed": 1},
        {"stop": ["x"]},
        {"n": 2},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"messages": [{"role": "user", "content": "hello"}]},
        {"messages": [{"role": "system", "content": "be brief"}, *HI]},
        {"model": "llama3"},
    ]
    for body in variants:
        assert (await chat(http, **body)).status_code == 200
    assert len(openai_upstream.requests) == len(variants) - 1  # llama3 goes to the Ollama fake
    for body in variants:
        resp = await chat(http, **body)
        assert "x-litellm-cache-key" in resp.headers, body
    assert len(openai_upstream.requests) == len(variants) - 1
    keys = set()
    for body in variants:
        keys.add((await chat(http, **body)).headers["x-litellm-cache-key"])
    assert len(keys) == len(variants)


async def test_what_does_not_change_the_answer_shares_it(
    proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI, admin_for: Any
) -> None:
    await chat(http, temperature=0.2, max_tokens=9)
    same = await chat(http, max_tokens=9, temperature=0.2, user="someone-else", top_p=None)  # order, user, nulls
    alias = await chat(http, model="gpt-alias", temperature=0.2, max_tokens=9)  # an alias of the same group
    key = await new_key(admin_for(proxy))
    other_caller = await chat(http, key=key["key"], temperature=0.2, max_tokens=9)  # the caller's key is not in it
    assert len(openai_upstream.requests) == 1
    assert same.headers["x-litellm-cache-key"] == alias.headers["x-litellm-cache-key"]
    assert other_caller.headers["x-litellm-cache-key"] == same.headers["x-litellm-cache-key"]


async def test_no_cache_no_store_ttl_and_s_maxage(
    proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI, clock: ModuleType
) -> None:
    await chat(http)
    fresh = await chat(http, cache={"no-cache": True})
    assert "x-litellm-cache-key" not in fresh.headers and len(openai_upstream.requests) == 2

    m = [{"role": "user", "content": "not stored"}]
    await chat(http, messages=m, cache={"no-store": True})
    again = await chat(http, messages=m)
    assert "x-litellm-cache-key" not in again.headers and len(openai_upstream.requests) == 4

    m = [{"role": "user", "content": "short lived"}]
    await chat(http, messages=m, cache={"ttl": 1})
    assert "x-litellm-cache-key" in (await chat(http, messages=m)).headers
    clock.advance(1.2)
    assert "x-litellm-cache-key" not in (await chat(http, messages=m)).headers
    assert len(openai_upstream.requests) == 6

    m = [{"role": "user", "content": "aging"}]
    await chat(http, messages=m)
    clock.advance(1.1)
    assert "x-litellm-cache-key" not in (await chat(http, messages=m, cache={"s-maxage": 1})).headers
    assert len(openai_upstream.requests) == 8
    assert "x-litellm-cache-key" in (await chat(http, messages=m, cache={"s-maxage": 60})).headers


async def test_configured_ttl(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, clock: ModuleType
) -> None:
    proxy = await start(proxy_factory, cache_config(openai_upstream, ollama_upstream, ttl=1))
    async with httpx.AsyncClient(base_url=proxy.url, headers=AUTH, timeout=30) as http:
        await chat(http)
        assert "x-litellm-cache-key" in (await chat(http)).headers
        clock.advance(1.2)
        assert "x-litellm-cache-key" not in (await chat(http)).headers


async def test_failures_and_broken_streams_are_not_cached(
    proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.fail(500, "boom")
    assert (await chat(http)).status_code == 500
    assert "x-litellm-cache-key" not in (await chat(http)).headers

    openai_upstream.push(Action(error_after=2))
    body = {"model": "gpt-fake", "messages": HI, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        broken = b"".join([c async for c in resp.aiter_bytes()])
    assert b"[DONE]" not in broken
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        whole = b"".join([c async for c in resp.aiter_bytes()])
        assert "x-litellm-cache-key" not in resp.headers
    assert whole.endswith(b"data: [DONE]\n\n")


async def test_streams_are_replayed_as_streams(
    proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)

    async def streamed() -> tuple[str, Any]:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-fake", messages=HI, stream=True, stream_options={"include_usage": True}
        )
        text, usage = "", None
        async for chunk in raw.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage
        return text, (raw.headers, usage)

    first_text, (first_headers, first_usage) = await streamed()
    second_text, (second_headers, second_usage) = await streamed()
    assert first_text == second_text == openai_upstream.reply_text
    assert first_usage is not None and second_usage == first_usage
    assert "x-litellm-cache-key" not in first_headers and "x-litellm-cache-key" in second_headers
    assert second_headers["content-type"].startswith("text/event-stream")
    assert len(openai_upstream.requests) == 1
    # A plain request is a different entry from the stream.
    assert "x-litellm-cache-key" not in (await chat(http)).headers


async def test_embeddings_are_cached(proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI) -> None:
    body = {"model": "embed-fake", "input": ["a", "b"]}
    first = await http.post("/v1/embeddings", json=body)
    second = await http.post("/v1/embeddings", json=body)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and "x-litellm-cache-key" in second.headers
    other = await http.post("/v1/embeddings", json={**body, "dimensions": 8})
    assert "x-litellm-cache-key" not in other.headers
    assert len(openai_upstream.requests) == 2


async def test_default_off_mode_and_call_types(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    config = cache_config(openai_upstream, ollama_upstream, mode="default_off", supported_call_types=["acompletion"])
    proxy = await start(proxy_factory, config)
    async with httpx.AsyncClient(base_url=proxy.url, headers=AUTH, timeout=30) as http:
        await chat(http)
        assert "x-litellm-cache-key" not in (await chat(http)).headers
        await chat(http, cache={"use-cache": True})
        assert "x-litellm-cache-key" in (await chat(http, cache={"use-cache": True})).headers
        body = {"model": "embed-fake", "input": "a"}
        await http.post("/v1/embeddings", json={**body, "cache": {"use-cache": True}})
        again = await http.post("/v1/embeddings", json={**body, "cache": {"use-cache": True}})
        assert "x-litellm-cache-key" not in again.headers  # embeddings are not a supported call type here


async def test_keys_may_be_forbidden_cache_controls(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, admin_for: Any
) -> None:
    admin = admin_for(shared_proxy)
    some = await new_key(admin, allowed_cache_controls=["no-store"])
    none = await new_key(admin, allowed_cache_controls=[])
    anything = await new_key(admin)
    assert (await chat(shared_admin, key=some["key"], cache={"no-store": True})).status_code == 200
    refused = await chat(shared_admin, key=some["key"], cache={"no-cache": True})
    assert refused.status_code == 403
    assert "may not use the cache control 'no-cache' (allowed: no-store)" in refused.json()["error"]["message"]
    assert (await chat(shared_admin, key=none["key"], cache={"no-store": True})).status_code == 403
    assert (await chat(shared_admin, key=none["key"])).status_code == 200
    assert (await chat(shared_admin, key=anything["key"], cache={"no-cache": True, "ttl": 5})).status_code == 200


@pytest.mark.parametrize(
    ("controls", "param"),
    [
        ("yes", "cache"),
        ({"no-cache": "true"}, "cache.no-cache"),
        ({"ttl": -1}, "cache.ttl"),
        ({"s-maxage": True}, "cache.s-maxage"),
        ({"namespace": ""}, "cache.namespace"),
        ({"bogus": 1}, "cache"),
    ],
)
async def test_bad_cache_controls_are_a_clear_400(shared_admin: httpx.AsyncClient, controls: Any, param: str) -> None:
    resp = await chat(shared_admin, cache=controls)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param


async def test_request_namespaces_keep_entries_apart(
    proxy: ProxyServer, http: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    await chat(http, cache={"namespace": "a"})
    assert "x-litellm-cache-key" in (await chat(http, cache={"namespace": "a"})).headers
    assert "x-litellm-cache-key" not in (await chat(http, cache={"namespace": "b"})).headers
    assert "x-litellm-cache-key" not in (await chat(http)).headers
    assert len(openai_upstream.requests) == 3


async def test_redis_cache_is_shared_by_replicas(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, redis_url: str, namespace: str
) -> None:
    litellm = {"cache": True, "cache_params": {"type": "redis", "url": redis_url, "namespace": namespace, "ttl": 30}}
    config = limits_config(openai_upstream, ollama_upstream, litellm=litellm)
    one, two = await start(proxy_factory, config), await start(proxy_factory, config)
    client = redis.Redis.from_url(redis_url)

    def stored() -> int:
        return len(list(client.scan_iter(f"{namespace}:*")))

    async with httpx.AsyncClient(base_url=one.url, headers=AUTH, timeout=30) as a:
        async with httpx.AsyncClient(base_url=two.url, headers=AUTH, timeout=30) as b:
            first = await chat(a)
            await eventually(lambda: stored() == 1)  # written just after the response went out
            hit = await chat(b)
            assert hit.content == first.content and "x-litellm-cache-key" in hit.headers
            body = {"model": "gpt-fake", "messages": HI, "stream": True}
            async with a.stream("POST", "/v1/chat/completions", json=body) as resp:
                streamed = b"".join([c async for c in resp.aiter_bytes()])
            await eventually(lambda: stored() == 2)
            async with b.stream("POST", "/v1/chat/completions", json=body) as resp:
                replayed = b"".join([c async for c in resp.aiter_bytes()])
                assert "x-litellm-cache-key" in resp.headers
    assert replayed == streamed
    assert len(openai_upstream.requests) == 2
    entries = list(client.scan_iter(f"{namespace}:*"))
    assert len(entries) == 2 and 0 < client.pttl(entries[0]) <= 30_000
    client.close()
