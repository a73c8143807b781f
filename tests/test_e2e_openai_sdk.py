"""End to end through the real OpenAI SDK: the proxy in front of fake OpenAI and Ollama servers."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def client(shared_proxy: ProxyServer) -> openai.AsyncOpenAI:
    """An SDK client of the module's proxy: every case here is a request and its answer (a 400 upstream
    does not count towards a cooldown)."""
    return openai.AsyncOpenAI(base_url=shared_proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", ["gpt-fake", "llama3", "llama3-generate"])
async def test_chat_plain(client: openai.AsyncOpenAI, model: str) -> None:
    resp = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.completion_tokens == 5


@pytest.mark.parametrize("model", ["gpt-fake", "llama3", "llama3-generate"])
async def test_chat_streamed(client: openai.AsyncOpenAI, model: str) -> None:
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Hello from the fake upstream"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 5


async def test_stream_without_usage_request_hides_usage_chunk(
    client: openai.AsyncOpenAI, openai_upstream: FakeOpenAI
) -> None:
    stream = await client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks), "the usage-only chunk the proxy asked for must not reach the client"
    sent = openai_upstream.requests[-1].body
    assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("model", ["gpt-fake", "llama3"])
async def test_chat_tools_round_trip(client: openai.AsyncOpenAI, model: str) -> None:
    resp = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "weather in Paris?"}], tools=TOOLS, tool_choice="auto"
    )
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls and msg.tool_calls[0].function.name == "get_weather"
    assert msg.tool_calls[0].function.arguments.replace(" ", "") == '{"city":"Paris"}'
    follow = await client.chat.completions.create(
        model=model,
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [tc.model_dump() for tc in msg.tool_calls]},
            {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny, 21C"},
        ],
    )
    assert follow.choices[0].message.content == "Hello from the fake upstream"


async def test_ollama_tool_result_carries_tool_name(client: openai.AsyncOpenAI, ollama_upstream: FakeOllama) -> None:
    await client.chat.completions.create(
        model="llama3",
        tools=TOOLS,
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "cold"},
        ],
    )
    sent = ollama_upstream.requests[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}
    assert sent[2] == {"role": "tool", "content": "cold", "tool_name": "get_weather"}


async def test_streamed_tool_call_from_ollama(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="llama3", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS, stream=True
    )
    calls, finish = [], None
    async for chunk in stream:
        for choice in chunk.choices:
            calls.extend(choice.delta.tool_calls or [])
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert calls[0].function.name == "get_weather" and calls[0].id.startswith("call_")


@pytest.mark.parametrize("model", ["gpt-fake", "llama3"])
async def test_completions(client: openai.AsyncOpenAI, model: str) -> None:
    resp = await client.completions.create(model=model, prompt="Hello")
    assert resp.choices[0].text
    assert resp.usage is not None and resp.usage.total_tokens > 0


async def test_completions_streamed_from_ollama(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(model="llama3", prompt="Hello", stream=True)
    text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == "Hello from the fake upstream"


@pytest.mark.parametrize("model", ["embed-fake", "nomic"])
async def test_embeddings_float_and_base64(client: openai.AsyncOpenAI, model: str) -> None:
    resp = await client.embeddings.create(model=model, input=["a", "b"])  # SDK asks for base64
    assert len(resp.data) == 2 and len(resp.data[0].embedding) == 3
    floats = await client.embeddings.create(model=model, input="a", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(resp.data[0].embedding)


async def test_ollama_base64_is_little_endian_float32(shared_proxy: ProxyServer) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        r = await http.post(
            shared_proxy.url + "/v1/embeddings",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "nomic", "input": "x", "encoding_format": "base64"},
        )
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    assert struct.unpack("<3f", raw) == (0.5, -0.25, 0.125)


async def test_models(client: openai.AsyncOpenAI) -> None:
    page = await client.models.list()
    ids = {m.id for m in page.data}
    assert {"gpt-fake", "llama3", "nomic", "embed-fake", "llama3-generate"} <= ids
    model = await client.models.retrieve("llama3")
    assert model.id == "llama3"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")


async def test_response_format_json_schema_reaches_ollama(client: openai.AsyncOpenAI, ollama_upstream: FakeOllama):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    await client.chat.completions.create(
        model="llama3",
        messages=[{"role": "user", "content": "x"}],
        max_tokens=12,
        temperature=0.2,
        seed=7,
        stop="END",
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    sent = ollama_upstream.requests[-1].body
    assert sent["format"] == schema
    assert sent["options"] == {"num_predict": 12, "temperature": 0.2, "seed": 7, "stop": ["END"]}
    assert sent["stream"] is False


async def test_wrong_key_is_401(shared_proxy: ProxyServer) -> None:
    bad = openai.AsyncOpenAI(base_url=shared_proxy.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await bad.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    assert "sk-wrong" not in str(info.value.body)


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"


async def test_upstream_400_passes_through(client: openai.AsyncOpenAI, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.fail(400, "temperature is out of range")
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
    assert "temperature is out of range" in info.value.message
    assert len(openai_upstream.requests) == 1, "a 400 is not retried"
