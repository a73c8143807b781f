"""Streams: failures before the first chunk are retried; after it they end with an error event."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import eventually

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(proxy: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


async def collect(stream: object) -> str:
    text = ""
    async for chunk in stream:  # type: ignore[attr-defined]
        for choice in chunk.choices:
            text += choice.delta.content or ""
    return text


async def test_failure_before_first_chunk_is_retried(client: openai.AsyncOpenAI, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.push(Action(drop_after=0))
    openai_upstream.fail(500, "not yet")
    stream = await client.chat.completions.create(model="gpt-fake", messages=HI, stream=True)
    assert await collect(stream) == "Hello from the fake upstream"
    assert len(openai_upstream.requests) == 3


@pytest.mark.parametrize("model", ["gpt-fake", "llama3"])
async def test_drop_mid_stream_ends_with_error_event(
    client: openai.AsyncOpenAI, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, model: str
) -> None:
    (openai_upstream if model == "gpt-fake" else ollama_upstream).push(Action(drop_after=2))
    stream = await client.chat.completions.create(model=model, messages=HI, stream=True)
    with pytest.raises(openai.APIError) as info:
        await collect(stream)
    assert "stream" in str(info.value.message)


async def test_ollama_error_line_mid_stream(proxy: ProxyServer, ollama_upstream: FakeOllama) -> None:
    ollama_upstream.push(Action(error_after=2))
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as http:
        async with http.stream(
            "POST", "/v1/chat/completions", json={"model": "llama3", "messages": HI, "stream": True}
        ) as resp:
            body = b"".join([c async for c in resp.aiter_bytes()])
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1].startswith(b'data: {"error"')
    assert b"an error was encountered while running the model" in events[-1]
    assert b"[DONE]" not in body


async def test_stalled_stream_hits_idle_timeout(proxy_factory: object, openai_upstream: FakeOpenAI) -> None:
    config = f"""
model_list:
  - model_name: gpt-fake
    litellm_params: {{model: openai/gpt-fake, api_base: "{openai_upstream.api_base}", stream_idle_timeout: 0.5}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config)  # type: ignore[arg-type]
    openai_upstream.push(Action(stall_after=2))
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    stream = await client.chat.completions.create(model="gpt-fake", messages=HI, stream=True)
    with pytest.raises(openai.APIError) as info:
        await asyncio.wait_for(collect(stream), 10)
    assert "sent nothing for 0.5s" in str(info.value.message)


async def test_stall_before_first_chunk_hits_stream_timeout(proxy_factory: object, openai_upstream: FakeOpenAI) -> None:
    config = f"""
model_list:
  - model_name: gpt-fake
    litellm_params: {{model: openai/gpt-fake, api_base: "{openai_upstream.api_base}", stream_timeout: 0.5}}
general_settings: {{master_key: {MASTER_KEY}}}
router_settings: {{num_retries: 0}}
"""
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config)  # type: ignore[arg-type]
    openai_upstream.push(Action(stall_after=0))
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="gpt-fake", messages=HI, stream=True)
    assert info.value.status_code == 504


async def test_client_disconnect_cancels_the_upstream(shared_proxy: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.push(Action(chunk_delay=0.3))
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as http:
        async with http.stream(
            "POST", "/v1/chat/completions", json={"model": "gpt-fake", "messages": HI, "stream": True}
        ) as resp:
            async for _ in resp.aiter_bytes():
                break  # the client goes away after the first bytes
    for _ in range(50):
        if openai_upstream.cancelled:
            break
        await asyncio.sleep(0.1)
    assert openai_upstream.cancelled == 1


async def test_client_disconnect_cancels_a_non_streaming_call(
    shared_proxy: ProxyServer, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.push(Action(delay=30))  # answers long after the check below gives up
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as http:
        with pytest.raises(httpx.ReadTimeout):
            # the client gives up reading after 0.5 s (connecting may take longer on a loaded machine)
            await http.post(
                "/v1/chat/completions",
                json={"model": "gpt-fake", "messages": HI},
                timeout=httpx.Timeout(0.5, connect=10),
            )
    # Only cancelling the upstream call frees the deployment this soon: the upstream itself takes 30 s.
    await eventually(lambda: shared_proxy.runtime.router.deployments[0].in_flight == 0, timeout=5)
