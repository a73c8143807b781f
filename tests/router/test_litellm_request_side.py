"""LiteLLM's request-side behaviour: configs with providers proxyllm lacks, the real cause of a failure,
fallback objects, mock_response, per-key model lists, access groups, per-model retries, headers."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY
from tests.fakes.base import Action
from tests.router.conftest import HI, chat, client, config, deployment, start


async def test_a_config_with_providers_proxyllm_lacks_starts_and_serves_the_others(
    fakes: Any, proxy_factory: Any
) -> None:
    (fake,) = await fakes(1)
    text = config(
        [
            deployment("m", fake),
            {"model_name": "sm", "litellm_params": {"model": "sagemaker/jumpstart-llama", "region_name": "us-west-2"}},
            {"model_name": "br", "litellm_params": {"model": "bedrock/anthropic.claude-3"}},
            {"model_name": "mixed", "litellm_params": {"model": "cohere/command-r"}},
            deployment("mixed", fake),
        ]
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    assert (await chat(c, "m")).http_response.status_code == 200
    assert (await chat(c, "mixed")).http_response.status_code == 200  # the implemented deployment serves it
    with pytest.raises(openai.APIStatusError) as info:
        await chat(c, "sm")
    assert info.value.status_code == 501 and "'sagemaker'" in info.value.message
    assert info.value.code == "provider_not_supported"
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        health = (await admin.get("/health")).json()
    unhealthy = {d["model_name"]: d for d in health["unhealthy_endpoints"]}
    assert unhealthy["sm"]["available"] is False and "not implemented" in unhealthy["sm"]["reason"]
    assert "br" in unhealthy


async def test_every_attempt_timing_out_is_a_504_that_lists_the_attempts(fakes: Any, proxy_factory: Any) -> None:
    (slow,) = await fakes(1)
    slow.delay = 2.0
    text = config([deployment("m", slow, timeout=1)], router={"allowed_fails": 1, "num_retries": 1})
    proxy = await start(proxy_factory, text)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as c:
        resp = await c.post("/v1/chat/completions", json={"model": "m", "messages": HI}, timeout=30)
    assert time.perf_counter() - started < 5
    assert resp.status_code == 504, resp.text
    error = resp.json()["error"]
    assert error["type"] == "timeout" and error["message"].startswith("timed out"), error
    assert error["attempts"][0]["kind"] == "timeout" and error["attempts"][0]["model_group"] == "m"


async def test_fallbacks_as_objects_bring_their_own_messages(fakes: Any, proxy_factory: Any) -> None:
    broken, backup = await fakes(2)
    broken.push(*[Action(status=500) for _ in range(10)])
    proxy = await start(proxy_factory, config([deployment("m", broken), deployment("backup", backup)]))
    other = [{"role": "user", "content": "the fallback's own question"}]
    raw = await chat(client(proxy), "m", extra_body={"fallbacks": [{"model": "backup", "messages": other}]})
    assert raw.http_response.status_code == 200
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert backup.requests[-1].body["messages"] == other
    with pytest.raises(openai.BadRequestError):
        await chat(client(proxy), "m", extra_body={"fallbacks": [{"model": "backup", "api_base": "http://evil"}]})


async def test_mock_response_answers_without_an_upstream(fakes: Any, proxy_factory: Any) -> None:
    (fake,) = await fakes(1)
    proxy = await start(proxy_factory, config([deployment("m", fake, input_cost_per_token=0.000001)]))
    c = client(proxy)
    reply = await c.chat.completions.create(model="m", messages=HI, extra_body={"mock_response": "mocked, fine"})
    assert reply.choices[0].message.content == "mocked, fine"
    stream = await c.chat.completions.create(
        model="m", messages=HI, stream=True, extra_body={"mock_response": "streamed mock"}
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "streamed mock"
    assert fake.requests == []


async def test_v1_models_lists_what_the_key_may_use(fakes: Any, proxy_factory: Any) -> None:
    (fake,) = await fakes(1)
    text = config(
        [
            deployment("a", fake),
            deployment("b", fake, model_info={"access_groups": ["beta"]}),
            deployment("c", fake, model_info={"access_groups": ["beta"]}),
            deployment("d", fake),
        ]
    )
    proxy = await start(proxy_factory, text)
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = (await admin.post("/key/generate", json={"models": ["a", "beta"]})).json()["key"]
        everything = (await admin.get("/v1/models")).json()
    assert {m["id"] for m in everything["data"]} == {"a", "b", "c", "d"}
    c = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    try:
        listed = {m.id async for m in c.models.list()}
        assert listed == {"a", "b", "c"}  # "beta" is an access group: b and c
        assert (
            await c.chat.completions.with_raw_response.create(model="c", messages=HI)
        ).http_response.status_code == 200
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="d", messages=HI)
        with pytest.raises(openai.NotFoundError):
            await c.models.retrieve("d")
    finally:
        await c.close()


async def test_per_model_num_retries_and_litellm_headers(fakes: Any, proxy_factory: Any) -> None:
    (flaky,) = await fakes(1)
    flaky.push(*[Action(status=500) for _ in range(3)])
    text = config(
        [deployment("m", flaky, num_retries=3, timeout=7, region_name="eu-west-1")],
        router={"num_retries": 0, "allowed_fails": 100},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy), "m")
    assert raw.http_response.status_code == 200
    assert raw.headers["x-litellm-attempted-retries"] == "3"
    assert raw.headers["x-litellm-max-retries"] == "3"
    assert raw.headers["x-litellm-timeout"] == "7"
    assert raw.headers["x-litellm-model-region"] == "eu-west-1"


async def test_a_team_key_may_not_name_models_outside_the_team(fakes: Any, proxy_factory: Any) -> None:
    (fake,) = await fakes(1)
    proxy = await start(proxy_factory, config([deployment("a", fake), deployment("b", fake)]))
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        assert (await admin.post("/team/new", json={"team_id": "only-a", "models": ["a"]})).status_code == 200
        refused = await admin.post("/key/generate", json={"team_id": "only-a", "models": ["a", "b"]})
        allowed = await admin.post("/key/generate", json={"team_id": "only-a", "models": ["a"]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "models", refused.text
    assert allowed.status_code == 200, allowed.text


async def test_tag_routing_by_request_and_key_tags(fakes: Any, proxy_factory: Any) -> None:
    paid, free, fallback = await fakes(3)
    text = config(
        [
            deployment("m", paid, tags=["paid"]),
            deployment("m", free, tags=["free"]),
            deployment("m", fallback, tags=["default"]),
        ],
        router={"enable_tag_filtering": True},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    for _ in range(3):
        await chat(c, "m", extra_body={"metadata": {"tags": ["paid"]}})
    await chat(c, "m", extra_body={"metadata": {"tags": ["unknown"]}})
    await chat(c, "m")
    assert len(paid.requests) == 3 and len(free.requests) == 0 and len(fallback.requests) == 2
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = (await admin.post("/key/generate", json={"tags": ["free"]})).json()["key"]
    keyed = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    try:
        await keyed.chat.completions.create(model="m", messages=HI)
    finally:
        await keyed.close()
    assert len(free.requests) == 1
    with pytest.raises(openai.BadRequestError):
        await chat(c, "m", extra_body={"metadata": {"tags": "paid"}})
