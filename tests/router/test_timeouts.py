"""Timeouts: whole responses, first chunk, between chunks (see test_streaming), and per request."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.fakes.base import Action
from tests.router.conftest import HI, chat, client, config, deployment, start, status


async def test_request_timeout_moves_to_another_deployment(fakes: Any, proxy_factory: Any) -> None:
    slow, quick = await fakes(2)
    slow.delay = 2.0
    text = config(
        [
            deployment("m", slow, timeout=0.3, input_cost_per_token=0),
            deployment("m", quick, timeout=0.3, input_cost_per_token=0.1),
        ],
        router={"routing_strategy": "cost-based-routing"},
    )
    proxy = await start(proxy_factory, text)
    started = time.perf_counter()
    raw = await chat(client(proxy))
    assert time.perf_counter() - started < 1.0
    assert raw.headers["x-litellm-attempted-retries"] == "1"
    assert len(quick.requests) == 1


async def test_router_settings_timeout_applies_to_every_deployment(fakes: Any, proxy_factory: Any) -> None:
    (slow,) = await fakes(1)
    slow.delay = 2.0
    proxy = await start(proxy_factory, config([deployment("m", slow)], router={"timeout": 0.2, "num_retries": 0}))
    started = time.perf_counter()
    with pytest.raises(openai.APIStatusError) as info:
        await chat(client(proxy))
    assert info.value.status_code == 504
    assert time.perf_counter() - started < 1.0


async def test_stream_timeout_is_for_the_first_chunk_only(fakes: Any, proxy_factory: Any) -> None:
    (box,) = await fakes(1)
    # The first chunk comes quickly, the rest slowly: within stream_timeout, within the idle timeout.
    box.push(Action(chunk_delay=0.15))
    proxy = await start(
        proxy_factory, config([deployment("m", box, stream_timeout=0.3, stream_idle_timeout=0.5, timeout=0.5)])
    )
    stream = await client(proxy).chat.completions.create(model="m", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the fake upstream", "a 0.9s stream is fine with a 0.3s first-chunk timeout"


async def test_slow_first_chunk_is_retried(fakes: Any, proxy_factory: Any) -> None:
    (box,) = await fakes(1)
    box.push(Action(delay=1.0))
    proxy = await start(proxy_factory, config([deployment("m", box, stream_timeout=0.3)]))
    started = time.perf_counter()
    stream = await client(proxy).chat.completions.create(model="m", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the fake upstream"
    assert time.perf_counter() - started < 1.0
    assert len(box.requests) == 2


@pytest.mark.parametrize("how", ["body", "header"])
async def test_per_request_timeout(fakes: Any, proxy_factory: Any, how: str) -> None:
    (slow,) = await fakes(1)
    slow.delay = 1.0
    proxy = await start(proxy_factory, config([deployment("m", slow)], router={"num_retries": 0}))
    kwargs: dict[str, Any] = (
        {"extra_body": {"timeout": 0.2}} if how == "body" else {"extra_headers": {"x-litellm-timeout": "0.2"}}
    )
    started = time.perf_counter()
    with pytest.raises(openai.APIStatusError) as info:
        await client(proxy).chat.completions.create(model="m", messages=HI, **kwargs)
    assert info.value.status_code == 504
    assert time.perf_counter() - started < 0.8
    assert status(proxy, slow)["state"] == "available"
    assert "timeout" not in slow.requests[0].body, "the proxy's own field is not forwarded"


async def test_per_request_timeout_on_streams_bounds_the_first_chunk(fakes: Any, proxy_factory: Any) -> None:
    (slow,) = await fakes(1)
    slow.push(Action(delay=1.0))
    proxy = await start(proxy_factory, config([deployment("m", slow)], router={"num_retries": 0}))
    with pytest.raises(openai.APIStatusError) as info:
        await client(proxy).chat.completions.create(
            model="m", messages=HI, stream=True, extra_headers={"x-litellm-timeout": "0.2"}
        )
    assert info.value.status_code == 504
    assert "first chunk" in info.value.message
