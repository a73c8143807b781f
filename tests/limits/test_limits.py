"""Rate and concurrency limits on one replica: exact under concurrency, headers, slots always freed."""

from __future__ import annotations

import asyncio
import re
from types import ModuleType
from typing import Any

import httpx
import pytest

from proxyllm.limits.hook import RateLimitHook
from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.limits.conftest import HI, away_from_minute_end, eventually, limits_config, new_key, start


def limiter_of(proxy: ProxyServer) -> RateLimitHook:
    return next(h for h in proxy.runtime.gateway.hooks if isinstance(h, RateLimitHook))


def in_flight(proxy: ProxyServer, counter: str) -> int:
    found = limiter_of(proxy).limiter.local.counters.get(counter)
    return found.in_flight if found is not None else 0


async def post_chat(proxy: ProxyServer, key: str, model: str = "gpt-fake", **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
        return await client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": HI, **body},
            headers={"authorization": f"Bearer {key}"},
        )


@pytest.fixture
async def proxy(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    return await start(proxy_factory, limits_config(openai_upstream, ollama_upstream))


@pytest.fixture(scope="module")
async def shared(module_proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    """One proxy for the cases whose limits are on keys, users and teams of their own (each window and
    slot counter is theirs alone). Cases that make the upstream fail (failures count towards a cooldown)
    or limit the whole proxy have their own."""
    return await start(module_proxy_factory, limits_config(openai_upstream, ollama_upstream))


async def test_rpm_limit_is_exact_under_concurrency(
    database_url: str,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    admin_for: Any,
    clock: ModuleType,
) -> None:
    proxy = await start(
        proxy_factory, limits_config(openai_upstream, ollama_upstream), env={"DATABASE_URL": database_url}
    )
    key = await new_key(admin_for(proxy), rpm_limit=5, key_alias="five-a-minute")
    await away_from_minute_end(clock=clock)
    responses = await asyncio.gather(*(post_chat(proxy, key["key"]) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 15
    assert len(openai_upstream.requests) == 5
    refused = next(r for r in responses if r.status_code == 429)
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert "key 'five-a-minute'" in error["message"] and "rpm_limit is 5 requests per minute" in error["message"]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "5"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert re.fullmatch(r"\d+s", refused.headers["x-ratelimit-reset-requests"])
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in responses if r.status_code == 200)
    assert remaining == [0, 1, 2, 3, 4]


async def test_success_headers_show_the_tightest_limits(shared: ProxyServer, admin_for: Any, clock: ModuleType) -> None:
    admin = admin_for(shared)
    await admin.post("/user/new", json={"user_id": "u-headers", "rpm_limit": 3})
    key = await new_key(admin, user_id="u-headers", rpm_limit=10, tpm_limit=1000, max_parallel_requests=4)
    await away_from_minute_end(clock=clock)
    resp = await post_chat(shared, key["key"])
    assert resp.status_code == 200
    assert resp.headers["x-ratelimit-limit-requests"] == "3"  # the user's limit is the tighter one
    assert resp.headers["x-ratelimit-remaining-requests"] == "2"
    assert resp.headers["x-ratelimit-limit-tokens"] == "1000"
    assert resp.headers["x-ratelimit-remaining-tokens"] == "1000"  # tokens are counted when a call ends
    assert resp.headers["x-ratelimit-limit-parallel-requests"] == "4"
    assert resp.headers["x-ratelimit-remaining-parallel-requests"] == "3"
    assert 1 <= int(resp.headers["x-ratelimit-reset-requests"].rstrip("s")) <= 60
    master = await post_chat(shared, MASTER_KEY)
    assert master.status_code == 200 and "x-ratelimit-limit-requests" not in master.headers


async def test_parallel_limit_is_exact_and_slots_come_back(
    shared: ProxyServer,
    admin_for: Any,
    openai_upstream: FakeOpenAI,
) -> None:
    key = await new_key(admin_for(shared), max_parallel_requests=2)
    openai_upstream.delay = 0.5
    responses = await asyncio.gather(*(post_chat(shared, key["key"]) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 2 + [429] * 6
    refused = next(r for r in responses if r.status_code == 429)
    assert "max_parallel_requests is 2 parallel requests" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "1"
    await eventually(lambda: in_flight(shared, f"key:{key['token']}") == 0)  # freed just after each response
    openai_upstream.delay = 0.0
    assert (await post_chat(shared, key["key"])).status_code == 200


async def test_slots_are_freed_after_upstream_errors_timeouts_and_disconnects(
    proxy: ProxyServer,
    admin_for: Any,
    openai_upstream: FakeOpenAI,
) -> None:
    key = await new_key(admin_for(proxy), max_parallel_requests=1)
    counter = f"key:{key['token']}"
    openai_upstream.fail(500, "boom")
    assert (await post_chat(proxy, key["key"])).status_code == 500
    await eventually(lambda: in_flight(proxy, counter) == 0)

    # Each upstream below would end by itself only long after its check's timeout: only the proxy's own
    # timeout, or the client leaving, frees the slot that soon.
    openai_upstream.push(Action(delay=10))
    assert (await post_chat(proxy, key["key"], timeout=0.3)).status_code == 504
    await eventually(lambda: in_flight(proxy, counter) == 0, timeout=3)

    openai_upstream.push(Action(delay=10))
    sent = len(openai_upstream.requests)
    task = asyncio.create_task(post_chat(proxy, key["key"]))
    await eventually(lambda: len(openai_upstream.requests) > sent)
    assert in_flight(proxy, counter) == 1
    task.cancel()  # the client goes away mid-request
    await eventually(lambda: in_flight(proxy, counter) == 0, timeout=3)

    openai_upstream.push(Action(chunk_delay=1.0))  # about 8 s of stream: still going when the client leaves
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
        body = {"model": "gpt-fake", "messages": HI, "stream": True}
        headers = {"authorization": f"Bearer {key['key']}"}
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
            assert resp.status_code == 200
            async for _ in resp.aiter_bytes():
                break  # one event, then the client hangs up mid-stream
    await eventually(lambda: in_flight(proxy, counter) == 0, timeout=3)
    assert (await post_chat(proxy, key["key"])).status_code == 200


async def test_tpm_limit_counts_tokens_when_calls_end(shared: ProxyServer, admin_for: Any, clock: ModuleType) -> None:
    # The fake answers 1 prompt + 5 completion tokens.
    key = await new_key(admin_for(shared), tpm_limit=10)
    counters = limiter_of(shared).limiter.local.counters
    await away_from_minute_end(clock=clock)
    first = await post_chat(shared, key["key"])
    assert first.status_code == 200 and first.headers["x-ratelimit-remaining-tokens"] == "10"
    await eventually(lambda: counters[f"key:{key['token']}"].tokens == 6)
    second = await post_chat(shared, key["key"])
    assert second.status_code == 200 and second.headers["x-ratelimit-remaining-tokens"] == "4"
    await eventually(lambda: counters[f"key:{key['token']}"].tokens == 12)
    third = await post_chat(shared, key["key"])
    assert third.status_code == 429
    assert "tpm_limit is 10 tokens per minute (12 tokens used this minute" in third.json()["error"]["message"]
    assert third.headers["x-ratelimit-limit-tokens"] == "10"
    assert third.headers["x-ratelimit-remaining-tokens"] == "0"


async def test_user_and_team_limits_span_their_keys(
    shared: ProxyServer,
    admin_for: Any,
    openai_upstream: FakeOpenAI,
    clock: ModuleType,
) -> None:
    admin = admin_for(shared)
    assert (await admin.post("/user/new", json={"user_id": "u-rpm", "rpm_limit": 2})).status_code == 200
    k1, k2 = await new_key(admin, user_id="u-rpm"), await new_key(admin, user_id="u-rpm")
    await away_from_minute_end(clock=clock)
    assert (await post_chat(shared, k1["key"])).status_code == 200
    assert (await post_chat(shared, k2["key"])).status_code == 200
    refused = await post_chat(shared, k1["key"])
    assert refused.status_code == 429 and "user 'u-rpm'" in refused.json()["error"]["message"]

    assert (await admin.post("/team/new", json={"team_id": "t-par", "max_parallel_requests": 1})).status_code == 200
    t1, t2 = await new_key(admin, team_id="t-par"), await new_key(admin, team_id="t-par")
    openai_upstream.delay = 0.4
    results = await asyncio.gather(post_chat(shared, t1["key"]), post_chat(shared, t2["key"]))
    assert sorted(r.status_code for r in results) == [200, 429]
    assert "team 't-par'" in next(r for r in results if r.status_code == 429).json()["error"]["message"]


async def test_model_limits_on_a_key(shared: ProxyServer, admin_for: Any, clock: ModuleType) -> None:
    admin = admin_for(shared)
    key = await new_key(admin, key_alias="per-model", model_rpm_limit={"gpt-fake": 1})
    info = (await admin.get("/key/info", params={"key": key["token"]})).json()["info"]
    assert info["metadata"]["model_rpm_limit"] == {"gpt-fake": 1}
    await away_from_minute_end(clock=clock)
    first = await post_chat(shared, key["key"])
    assert first.status_code == 200
    assert first.headers["x-litellm-key-remaining-requests-gpt-fake"] == "0"
    second = await post_chat(shared, key["key"])
    assert second.status_code == 429
    message = second.json()["error"]["message"]
    assert "model 'gpt-fake' on key 'per-model'" in message and "model_rpm_limit is 1" in message
    assert (await post_chat(shared, key["key"], model="llama3")).status_code == 200  # other models are not limited

    # Set directly in the metadata, as LiteLLM stores them, works the same; an update merges into it.
    other = await new_key(admin, metadata={"team": "x", "model_tpm_limit": {"gpt-fake": 5}})
    assert (await post_chat(shared, other["key"])).status_code == 200
    counters = limiter_of(shared).limiter.local.counters
    await eventually(lambda: counters[f"key_model:{other['token']}:gpt-fake"].tokens == 6)
    refused = await post_chat(shared, other["key"])
    assert refused.status_code == 429 and "model_tpm_limit is 5" in refused.json()["error"]["message"]
    resp = await admin.post("/key/update", json={"key": other["token"], "model_tpm_limit": {"gpt-fake": 1000}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"] == {"team": "x", "model_tpm_limit": {"gpt-fake": 1000}}
    assert (await post_chat(shared, other["key"])).status_code == 200


async def test_bad_model_limits_are_refused(shared: ProxyServer, admin_for: Any) -> None:
    resp = await admin_for(shared).post("/key/generate", json={"model_rpm_limit": {"gpt-fake": -1}})
    assert resp.status_code == 400 or resp.status_code == 422
    assert "model_rpm_limit" in resp.text


async def test_global_max_parallel_requests(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    config = limits_config(openai_upstream, ollama_upstream, general={"global_max_parallel_requests": 2})
    proxy = await start(proxy_factory, config)
    openai_upstream.delay = 0.5
    responses = await asyncio.gather(*(post_chat(proxy, MASTER_KEY) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [200] * 2 + [429] * 4
    refused = next(r for r in responses if r.status_code == 429)
    assert "the proxy: global_max_parallel_requests is 2" in refused.json()["error"]["message"]
    await eventually(lambda: in_flight(proxy, "global") == 0)  # released just after each response is sent
