"""``/v1/responses`` in front of the Anthropic and Gemini adapters: text, streams and streamed tool calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import API_KEY as GEMINI_KEY
from tests.fakes.gemini_upstream import FakeGemini

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
async def proxy(
    module_proxy_factory: Any, anthropic_upstream: FakeAnthropic, gemini_upstream: FakeGemini
) -> ProxyServer:
    """One proxy for the module: every case is a request and its translation."""
    text = f"""
model_list:
  - model_name: claude
    litellm_params: {{model: anthropic/claude-fake-4, api_base: {anthropic_upstream.url}}}
  - model_name: gemini
    litellm_params: {{model: gemini/gemini-fake-flash, api_base: {gemini_upstream.url}}}
general_settings:
  master_key: {MASTER_KEY}
"""
    env = {"ANTHROPIC_API_KEY": ANTHROPIC_KEY, "GEMINI_API_KEY": GEMINI_KEY}
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text, env=env)
    return server


@pytest.fixture
def client(proxy: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", ["claude", "gemini"])
async def test_text_plain_and_streamed(client: openai.AsyncOpenAI, model: str) -> None:
    plain = await client.responses.create(model=model, input="hi", instructions="be brief")
    assert plain.status == "completed" and plain.output_text
    assert plain.usage is not None and plain.usage.output_tokens > 0
    events = [e async for e in await client.responses.create(model=model, input="hi", stream=True)]
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text == plain.output_text


@pytest.mark.parametrize("model", ["claude", "gemini"])
async def test_streamed_tool_call_round_trip(client: openai.AsyncOpenAI, model: str) -> None:
    events = [e async for e in await client.responses.create(model=model, input="weather?", tools=TOOLS, stream=True)]
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    first = events[-1].response
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    follow = await client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=TOOLS,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert follow.status == "completed" and follow.output_text
    assert not [item for item in follow.output if item.type == "function_call"]
