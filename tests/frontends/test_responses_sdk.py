"""``/v1/responses`` end to end through the real OpenAI SDK, against the Ollama and OpenAI fakes.

``llama3`` (Ollama) and ``gpt-fake`` (an OpenAI-compatible server without ``supports_responses``) are
translated to chat completions; ``gpt-native`` is the same fake with ``supports_responses: true``, so
the proxy passes the Responses API through to the fake's own ``/v1/responses``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
MODELS = ["llama3", "gpt-fake", "gpt-native"]


def native_model(openai_base: str) -> str:
    return f"""
  - model_name: gpt-native
    litellm_params:
      model: openai/gpt-fake
      api_base: {openai_base}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
    model_info:
      supports_responses: true
"""


@pytest.fixture(scope="module")
async def proxy(module_proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    """One proxy for the module: every case reads, or stores responses of its own."""
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    config = config.replace("model_list:\n", "model_list:\n" + native_model(openai_upstream.api_base), 1)
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, config)
    return server


@pytest.fixture
def client(proxy: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
async def test_create(client: openai.AsyncOpenAI, model: str) -> None:
    resp = await client.responses.create(model=model, input="hi", instructions="be brief", metadata={"k": "v"})
    assert resp.status == "completed"
    assert resp.output_text == "Hello from the fake upstream"
    assert resp.id.startswith("resp_")
    assert resp.usage is not None and resp.usage.output_tokens == 5 and resp.usage.input_tokens > 0
    assert resp.metadata == {"k": "v"}


@pytest.mark.parametrize("model", MODELS)
async def test_stream_event_sequence(client: openai.AsyncOpenAI, model: str) -> None:
    stream = await client.responses.create(model=model, input="hi", stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for kind in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ):
        assert kind in kinds, kind
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from the fake upstream"
    final = events[-1].response
    assert final.output_text == text
    assert final.usage is not None and final.usage.output_tokens == 5


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(client: openai.AsyncOpenAI, model: str, stream: bool) -> None:
    if stream:
        events = [
            e async for e in await client.responses.create(model=model, input="weather?", tools=TOOLS, stream=True)
        ]
        kinds = [e.type for e in events]
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
        first = events[-1].response
    else:
        first = await client.responses.create(model=model, input="weather in Paris?", tools=TOOLS, tool_choice="auto")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    follow = await client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=TOOLS,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"}],
    )
    assert follow.output_text == "Hello from the fake upstream"
    assert follow.previous_response_id == first.id


@pytest.mark.parametrize("model", ["llama3", "gpt-fake"])
async def test_tool_output_reaches_chat_upstream(
    client: openai.AsyncOpenAI, model: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    """Without a stored response: the whole conversation as items, translated to chat messages."""
    await client.responses.create(
        model=model,
        store=False,
        tools=TOOLS,
        input=[
            {"role": "user", "content": "weather in Paris?"},
            {"type": "function_call", "call_id": "call_9", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
        ],
    )
    upstream = ollama_upstream if model == "llama3" else openai_upstream
    messages = upstream.requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[-1]["content"] == "sunny"


@pytest.mark.parametrize("model", MODELS)
async def test_structured_output(
    client: openai.AsyncOpenAI, model: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    resp = await client.responses.create(
        model=model,
        input="answer in JSON",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
    )
    assert resp.status == "completed"
    sent = (ollama_upstream if model == "llama3" else openai_upstream).requests[-1].body
    if model == "llama3":
        assert sent["format"] == schema
    elif model == "gpt-fake":
        assert sent["response_format"]["json_schema"]["schema"] == schema
    else:
        assert sent["text"]["format"]["schema"] == schema and sent["store"] is False


def sent_text(upstream: FakeOpenAI | FakeOllama) -> str:
    return json.dumps(upstream.requests[-1].body)


@pytest.mark.parametrize("model", MODELS)
async def test_previous_response_retrieve_delete_input_items(
    client: openai.AsyncOpenAI, model: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    upstream = ollama_upstream if model == "llama3" else openai_upstream
    first = await client.responses.create(model=model, input="my name is Ada")
    second = await client.responses.create(model=model, input="what is my name?", previous_response_id=first.id)
    sent = sent_text(upstream)  # the stored conversation went upstream in front of the new input
    assert sent.index("my name is Ada") < sent.index("Hello from the fake upstream") < sent.index("what is my name?")
    assert upstream.requests[-1].path.endswith("/responses") == (model == "gpt-native")
    got = await client.responses.retrieve(second.id)
    assert got.id == second.id and got.output_text == second.output_text
    assert got.previous_response_id == first.id
    items = await client.responses.input_items.list(second.id)
    texts = [part.text for item in items.data for part in getattr(item, "content", []) if hasattr(part, "text")]
    assert texts == ["what is my name?"]
    deleted = await client.responses.delete(first.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model=model, input="again", previous_response_id=first.id)


async def test_store_false_is_not_stored(client: openai.AsyncOpenAI) -> None:
    resp = await client.responses.create(model="llama3", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(resp.id)
