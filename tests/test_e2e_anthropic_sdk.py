"""``/v1/messages`` end to end through the real ``anthropic`` SDK, served by OpenAI and Ollama fakes."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

MODELS = ["gpt-fake", "llama3"]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


@pytest.fixture
def client(shared_proxy: ProxyServer) -> anthropic.AsyncAnthropic:
    """An SDK client of the module's proxy (a 400 upstream does not count towards a cooldown)."""
    return anthropic.AsyncAnthropic(base_url=shared_proxy.url, api_key=MASTER_KEY, max_retries=0)


def last_request(model: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> dict[str, Any]:
    fake = openai_upstream if model == "gpt-fake" else ollama_upstream
    return fake.requests[-1].body


@pytest.mark.parametrize("model", MODELS)
async def test_plain(
    client: anthropic.AsyncAnthropic, model: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    msg = await client.messages.create(
        model=model, max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.type == "message" and msg.role == "assistant" and msg.model == model
    assert msg.id.startswith("msg_")
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens == 5 and msg.usage.input_tokens > 0
    sent = last_request(model, openai_upstream, ollama_upstream)
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("model", MODELS)
async def test_streamed(client: anthropic.AsyncAnthropic, model: str) -> None:
    async with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from the fake upstream"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5 and final.usage.input_tokens > 0


async def test_stream_event_names(shared_proxy: ProxyServer) -> None:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            shared_proxy.url + "/v1/messages",
            headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
            json={"model": "llama3", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        ) as resp,
    ):
        assert resp.headers["content-type"].startswith("text/event-stream")
        names = [line[7:] async for line in resp.aiter_lines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_use_round_trip(
    client: anthropic.AsyncAnthropic,
    model: str,
    stream: bool,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> None:
    ask: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        async with client.messages.stream(model=model, max_tokens=100, tools=TOOLS, messages=ask) as events:
            msg = await events.get_final_message()
    else:
        msg = await client.messages.create(model=model, max_tokens=100, tools=TOOLS, messages=ask)
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"}  # type: ignore[union-attr]
    assert last_request(model, openai_upstream, ollama_upstream)["tools"][0]["function"]["name"] == "get_weather"
    follow = await client.messages.create(
        model=model,
        max_tokens=100,
        tools=TOOLS,
        messages=[
            *ask,
            {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21C"}]},  # type: ignore[union-attr]
        ],
    )
    assert follow.content[0].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    sent = last_request(model, openai_upstream, ollama_upstream)["messages"]
    if model == "gpt-fake":
        assert sent[-1] == {"role": "tool", "tool_call_id": use.id, "content": "sunny, 21C"}  # type: ignore[union-attr]
    else:
        assert sent[-1] == {"role": "tool", "content": "sunny, 21C", "tool_name": "get_weather"}


async def test_tool_choice_any_is_required(client: anthropic.AsyncAnthropic, openai_upstream: FakeOpenAI) -> None:
    await client.messages.create(
        model="gpt-fake",
        max_tokens=10,
        tools=TOOLS,
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "x"}],
    )
    sent = openai_upstream.requests[-1].body
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False


async def test_image_and_parameters_reach_ollama(client: anthropic.AsyncAnthropic, ollama_upstream: FakeOllama) -> None:
    await client.messages.create(
        model="llama3",
        max_tokens=77,
        stop_sequences=["END"],
        extra_body={"temperature": 0.3, "top_k": 5},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    )
    sent = ollama_upstream.requests[-1].body
    assert sent["messages"] == [{"role": "user", "content": "what is this?", "images": [PIXEL]}]
    assert sent["options"] == {"num_predict": 77, "temperature": 0.3, "top_k": 5, "stop": ["END"]}


async def test_bearer_auth_and_wrong_key(shared_proxy: ProxyServer) -> None:
    bearer = anthropic.AsyncAnthropic(base_url=shared_proxy.url, auth_token=MASTER_KEY, api_key=None, max_retries=0)
    msg = await bearer.messages.create(model="llama3", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert msg.content
    wrong = anthropic.AsyncAnthropic(base_url=shared_proxy.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await wrong.messages.create(model="llama3", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "sk-wrong" not in str(info.value.body)


async def test_errors_in_anthropic_shape(client: anthropic.AsyncAnthropic, openai_upstream: FakeOpenAI) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(model="llama3", max_tokens=10, messages=[{"role": "robot", "content": "x"}])  # type: ignore[typeddict-item]
    assert "role" in bad.value.message
    openai_upstream.fail(400, "temperature is out of range")
    with pytest.raises(anthropic.BadRequestError) as upstream:
        await client.messages.create(model="gpt-fake", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert upstream.value.body["error"]["message"] == "temperature is out of range"  # type: ignore[index]


async def test_non_json_body_is_400(shared_proxy: ProxyServer) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(shared_proxy.url + "/v1/messages", headers={"x-api-key": MASTER_KEY}, content=b"{nope")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_document_blocks_need_an_anthropic_model(client: anthropic.AsyncAnthropic) -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(model="llama3", max_tokens=10, messages=[{"role": "user", "content": [pdf]}])
    assert "Anthropic model" in info.value.message


async def test_error_mid_stream_is_an_error_event(proxy: ProxyServer, ollama_upstream: FakeOllama) -> None:
    """On a proxy of its own: a failed stream counts towards the deployment's cooldown."""
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
    ollama_upstream.push(Action(error_after=2))
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(
            model="llama3", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            async for _ in stream:
                pass
    assert "an error was encountered" in str(info.value)


async def test_count_tokens_estimate_for_non_anthropic(client: anthropic.AsyncAnthropic) -> None:
    raw = await client.messages.with_raw_response.count_tokens(
        model="llama3", system="Be brief.", messages=[{"role": "user", "content": "hello there, how are you?"}]
    )
    assert raw.headers["x-proxyllm-token-count"] == "estimate"
    counted = await raw.parse()
    assert 5 <= counted.input_tokens <= 20
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.count_tokens(model="nope", messages=[{"role": "user", "content": "hi"}])
