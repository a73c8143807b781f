"""The response cache in front of ``/v1/responses``: a hit needs no upstream and is still a response of
its own (its own id, stored for its own key), plain and streamed, translated and passed through."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.frontends.test_responses_sdk import native_model


@pytest.fixture
async def proxy(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    extra = "litellm_settings:\n  cache: true\n  cache_params: {type: local}\n"
    config = standard_config(openai_upstream.api_base, ollama_upstream.url, extra)
    config = config.replace("model_list:\n", "model_list:\n" + native_model(openai_upstream.api_base), 1)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config)
    return server


@pytest.mark.parametrize("model", ["llama3", "gpt-native"])
@pytest.mark.parametrize("stream", [False, True])
async def test_cache_hit(
    proxy: ProxyServer, model: str, stream: bool, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    upstream = ollama_upstream if model == "llama3" else openai_upstream

    async def ask() -> Any:
        if not stream:
            return await client.responses.create(model=model, input="cache me")
        events = [e async for e in await client.responses.create(model=model, input="cache me", stream=True)]
        return events[-1].response

    first = await ask()
    calls = len(upstream.requests)
    second = await ask()
    assert len(upstream.requests) == calls  # answered from the cache
    assert second.output_text == first.output_text == "Hello from the fake upstream"
    if not stream or model == "llama3":  # a replayed passthrough stream carries the upstream's id
        assert second.id != first.id
        assert (await client.responses.retrieve(second.id)).output_text == second.output_text
    assert (await client.responses.retrieve(first.id)).id == first.id
