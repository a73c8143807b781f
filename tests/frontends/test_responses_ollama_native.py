"""Ollama deployments marked ``supports_responses: true`` get the Responses API itself (Ollama >= 0.13.3),
and a chat upstream failing mid-stream ends the Responses stream with ``error`` and ``response.failed``."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI


class OllamaWithResponses(FakeOllama):
    """Ollama's /api/* plus its OpenAI-compatible /v1/responses (answered like the OpenAI fake)."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/v1/responses", functools.partial(FakeOpenAI.responses, self))


@pytest.fixture
async def ollama() -> Any:
    fake = OllamaWithResponses()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def proxy(proxy_factory: Any, ollama: OllamaWithResponses) -> ProxyServer:
    config = f"""
model_list:
  - model_name: qwen-native
    litellm_params: {{model: ollama_chat/qwen3:8b, api_base: {ollama.url}, supports_responses: true}}
  - model_name: qwen
    litellm_params: {{model: ollama_chat/qwen3:8b, api_base: {ollama.url}}}
general_settings:
  master_key: {MASTER_KEY}
"""
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config)
    return server


@pytest.fixture
def client(proxy: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


async def test_native_plain_and_streamed(client: openai.AsyncOpenAI, ollama: OllamaWithResponses) -> None:
    plain = await client.responses.create(model="qwen-native", input="hi")
    assert plain.output_text == "Hello from the fake upstream"
    sent = ollama.requests[-1]
    assert sent.path == "/v1/responses" and sent.body["model"] == "qwen3:8b" and sent.body["store"] is False
    events = [e async for e in await client.responses.create(model="qwen-native", input="hi", stream=True)]
    assert events[-1].type == "response.completed" and events[-1].response.output_text == plain.output_text
    follow = await client.responses.create(model="qwen-native", input="more", previous_response_id=plain.id)
    assert follow.previous_response_id == plain.id
    assert [i.get("role") for i in ollama.requests[-1].body["input"]] == ["user", "assistant", "user"]


async def test_chat_upstream_failing_mid_stream(client: openai.AsyncOpenAI, ollama: OllamaWithResponses) -> None:
    ollama.push(Action(error_after=2))
    events = [e async for e in await client.responses.create(model="qwen", input="hi", stream=True)]
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert "response.output_text.delta" in kinds
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None and failed.error.message
    stored = await client.responses.retrieve(failed.id)
    assert stored.status == "failed"
