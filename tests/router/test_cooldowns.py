"""Cooldowns: failing deployments are left out, come back on their own, and 429s are honoured."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import openai
import pytest

from tests.fakes.base import Action
from tests.router.conftest import chat, client, config, deployment, eventually, start, status


async def test_cooldown_after_allowed_fails_and_back_after_cooldown_time(
    fakes: Any, proxy_factory: Any, clock: ModuleType
) -> None:
    bad, good = await fakes(2)
    bad.failure_rate = 1.0
    text = config([deployment("m", bad), deployment("m", good)], router={"allowed_fails": 2, "cooldown_time": 1})
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    retried = 0
    for _ in range(20):
        raw = await chat(c)
        retried += int(raw.headers["x-litellm-attempted-retries"])
    assert len(bad.requests) == 2, "two failures (allowed_fails) and the deployment is out"
    assert retried == 2, "each failure was retried on the healthy deployment, unseen by the client"
    state = status(proxy, bad)
    assert state["state"] == "cooldown" and state["cooldown"]["reason"] == "failing"

    bad.failure_rate = 0.0
    clock.advance(1.1)
    for _ in range(20):
        await chat(c)
    assert len(bad.requests) >= 5, "after cooldown_time the deployment is back in rotation"
    assert status(proxy, bad)["state"] == "available"


async def test_every_deployment_cooling_fails_fast_with_503(fakes: Any, proxy_factory: Any) -> None:
    (bad,) = await fakes(1)
    bad.failure_rate = 1.0
    text = config([deployment("m", bad)], router={"allowed_fails": 1, "cooldown_time": 5, "num_retries": 0})
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    with pytest.raises(openai.InternalServerError):
        await chat(c)
    started = time.perf_counter()
    with pytest.raises(openai.APIStatusError) as info:
        await chat(c)
    assert time.perf_counter() - started < 0.3, "no waiting on a deployment known to be down"
    assert info.value.status_code == 503
    assert "cooling down" in info.value.message
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 5
    assert len(bad.requests) == 1


async def test_429_with_retry_after_is_waited_for_on_a_single_deployment(fakes: Any, proxy_factory: Any) -> None:
    (only,) = await fakes(1)
    only.fail(429, "slow down", retry_after="1")
    proxy = await start(proxy_factory, config([deployment("m", only)]))
    started = time.perf_counter()
    raw = await chat(client(proxy))
    elapsed = time.perf_counter() - started
    assert 0.95 <= elapsed < 2.0, f"Retry-After: 1 was honoured ({elapsed:.2f}s)"
    assert raw.headers["x-litellm-attempted-retries"] == "1"
    assert len(only.requests) == 2


async def test_429_longer_than_max_retry_wait_goes_back_to_the_client(fakes: Any, proxy_factory: Any) -> None:
    (only,) = await fakes(1)
    only.fail(429, "quota window", retry_after="30")
    proxy = await start(proxy_factory, config([deployment("m", only)]))
    started = time.perf_counter()
    with pytest.raises(openai.RateLimitError) as info:
        await chat(client(proxy))
    assert time.perf_counter() - started < 1.0
    assert info.value.response.headers["retry-after"] == "30"
    assert len(only.requests) == 1


async def test_429_with_another_deployment_cools_it_for_retry_after(fakes: Any, proxy_factory: Any) -> None:
    limited, other = await fakes(2)
    limited.fail(429, "rate limited", retry_after="2")
    text = config(
        [deployment("m", limited, input_cost_per_token=0), deployment("m", other, input_cost_per_token=0.1)],
        router={"routing_strategy": "cost-based-routing"},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    started = time.perf_counter()
    await chat(c)
    assert time.perf_counter() - started < 0.5, "the other deployment answers without waiting"
    state = status(proxy, limited)
    assert state["cooldown"]["reason"] == "rate_limited"
    assert 1.5 < state["cooldown"]["remaining_seconds"] <= 2.0
    for _ in range(5):
        await chat(c)
    assert len(limited.requests) == 1, "nothing is sent to it before its Retry-After"
    await eventually(lambda: status(proxy, limited)["state"] == "available", timeout=3)
    await chat(c)
    assert len(limited.requests) == 2


async def test_failures_the_client_caused_do_not_cool_a_deployment(fakes: Any, proxy_factory: Any) -> None:
    (only,) = await fakes(1)
    only.fail(400, "bad temperature", times=5)
    proxy = await start(proxy_factory, config([deployment("m", only)], router={"allowed_fails": 1}))
    c = client(proxy)
    for _ in range(5):
        with pytest.raises(openai.BadRequestError):
            await chat(c)
    only.delay = 0.5
    with pytest.raises(openai.APIStatusError) as info:
        await c.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-litellm-timeout": "0.1"},
            extra_body={"num_retries": 0},
        )
    assert info.value.status_code == 504
    assert len(only.requests) == 6, "num_retries 0 in the body: one attempt"
    only.delay = 0.0
    await chat(c)
    assert status(proxy, only)["state"] == "available"


async def test_mid_stream_failures_count_towards_cooldown(fakes: Any, proxy_factory: Any) -> None:
    flaky, steady = await fakes(2)
    flaky.push(Action(error_after=2), Action(error_after=2))
    text = config(
        [deployment("m", flaky, input_cost_per_token=0), deployment("m", steady, input_cost_per_token=0.1)],
        router={"routing_strategy": "cost-based-routing", "allowed_fails": 2, "cooldown_time": 10},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    for _ in range(2):
        with pytest.raises(openai.APIError):
            stream = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], stream=True
            )
            async for _chunk in stream:
                pass
    await eventually(lambda: status(proxy, flaky)["state"] == "cooldown")
    assert status(proxy, flaky)["in_flight"] == 0
    await chat(c)
    assert len(steady.requests) == 1
