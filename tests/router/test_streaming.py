"""Streams that fail before their first chunk are served elsewhere; after it they end with an error event."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY
from tests.fakes.base import Action
from tests.router.conftest import client, config, deployment, eventually, start

X = [{"role": "user", "content": "x"}]


def cheap_first(first: Any, second: Any, **params: Any) -> list[dict[str, Any]]:
    """Two deployments of 'm' where cost-based routing always tries ``first`` first."""
    return [
        deployment("m", first, input_cost_per_token=0, **params),
        deployment("m", second, input_cost_per_token=0.001, **params),
    ]


async def read_stream(c: openai.AsyncOpenAI) -> tuple[str, Any]:
    raw = await c.chat.completions.with_raw_response.create(model="m", messages=X, stream=True)
    text = ""
    async for chunk in raw.parse():
        for choice in chunk.choices:
            text += choice.delta.content or ""
    return text, raw.headers


@pytest.mark.parametrize(
    "failure",
    [
        Action(drop_after=0),  # connection closed before any event
        Action(error_after=0),  # an error event first
        Action(status=500, body={"error": {"message": "boom"}}),
        Action(stall_after=0),  # nothing at all: stream_timeout
    ],
    ids=["dropped", "error-event", "500", "stalled"],
)
async def test_stream_failing_before_first_chunk_is_served_elsewhere(
    fakes: Any, proxy_factory: Any, failure: Action
) -> None:
    dying, healthy = await fakes(2)
    dying.push(failure)
    wait = 0.5 if failure.stall_after == 0 else 10  # only the stall needs a short first-chunk timeout
    text = config(cheap_first(dying, healthy, stream_timeout=wait), router={"routing_strategy": "cost-based-routing"})
    proxy = await start(proxy_factory, text)
    answer, headers = await read_stream(client(proxy))
    assert answer == "Hello from the fake upstream"
    assert headers["x-litellm-attempted-retries"] == "1"
    assert headers["x-litellm-model-id"] != proxy.runtime.router.deployments[0].id
    assert len(dying.requests) == 1 and len(healthy.requests) == 1


async def test_stream_failing_before_first_chunk_falls_back(fakes: Any, proxy_factory: Any) -> None:
    dying, backup = await fakes(2)
    dying.push(Action(drop_after=0))
    text = config(
        [deployment("m", dying), deployment("backup", backup)],
        router={"num_retries": 0, "fallbacks": [{"m": ["backup"]}]},
    )
    proxy = await start(proxy_factory, text)
    answer, headers = await read_stream(client(proxy))
    assert answer == "Hello from the fake upstream"
    assert headers["x-litellm-model-group"] == "backup"


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (Action(error_after=2), "the model crashed"),
        (Action(drop_after=2), "upstream"),
        (Action(stall_after=2), "sent nothing"),
    ],
    ids=["error-event", "dropped", "stalled"],
)
async def test_stream_failing_midway_ends_with_an_error_event(
    fakes: Any, proxy_factory: Any, failure: Action, words: str
) -> None:
    dying, healthy = await fakes(2)
    dying.push(failure)
    text = config(
        cheap_first(dying, healthy, stream_idle_timeout=0.4), router={"routing_strategy": "cost-based-routing"}
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    received = ""
    with pytest.raises(openai.APIError) as info:
        stream = await c.chat.completions.create(model="m", messages=X, stream=True)
        async for chunk in stream:
            received += chunk.choices[0].delta.content or ""
    assert received == "Hello from", "the two events before the failure reached the client"
    assert words in str(info.value.message)
    assert not healthy.requests, "a started stream is never replayed elsewhere"
    # On the wire: the error is the last event, and there is no [DONE].
    dying.push(failure)
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            proxy.url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "m", "messages": X, "stream": True},
        )
    events = [e for e in resp.text.split("\n\n") if e]
    assert events[-1].startswith('data: {"error"') and "[DONE]" not in resp.text
    await eventually(lambda: all(d.in_flight == 0 for d in proxy.runtime.router.deployments))


async def test_client_leaving_mid_stream_releases_the_deployment(fakes: Any, proxy_factory: Any) -> None:
    slow, other = await fakes(2)
    slow.push(Action(chunk_delay=0.3))
    text = config(cheap_first(slow, other), router={"routing_strategy": "cost-based-routing"})
    proxy = await start(proxy_factory, text)
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream(
            "POST",
            proxy.url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "m", "messages": X, "stream": True},
        ) as resp:
            async for _line in resp.aiter_lines():
                break
    router = proxy.runtime.router
    await eventually(lambda: all(d.in_flight == 0 for d in router.deployments))
    await eventually(lambda: slow.cancelled == 1)
    await asyncio.sleep(0.05)
    assert all(s.fails == 0 for s in router.stats.values()), "a client leaving is not the deployment's failure"
