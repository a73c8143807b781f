"""``anthropic/<model>`` end to end: the openai SDK -> the proxy -> a fake Anthropic server."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def config(anthropic_base: str, ollama_base: str = "http://127.0.0.1:9") -> str:
    return f"""
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-fake-4
      api_base: {anthropic_base}
  - model_name: claude-wrong-key
    litellm_params:
      model: anthropic/claude-fake-4
      api_base: {anthropic_base}
      api_key: sk-ant-wrong
  - model_name: llama3
    litellm_params:
      model: ollama_chat/llama3
      api_base: {ollama_base}
litellm_settings:
  fallbacks: [{{"claude": ["llama3"]}}]
router_settings:
  num_retries: 1
general_settings:
  master_key: {MASTER_KEY}
"""


@pytest.fixture(scope="module")
async def shared(
    module_proxy_factory: Any, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama
) -> ProxyServer:
    """The proxy the module shares. Cases that make the upstream fail in a way that counts towards a
    cooldown (429, error events, overload) use ``proxy``, their own."""
    text = config(anthropic_upstream.url, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text, env={"ANTHROPIC_API_KEY": API_KEY})
    return server


@pytest.fixture
async def proxy(proxy_factory: Any, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama) -> ProxyServer:
    text = config(anthropic_upstream.url, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, text, env={"ANTHROPIC_API_KEY": API_KEY})
    return server


@pytest.fixture
def client(shared: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=shared.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def own_client(proxy: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


async def test_plain_chat(client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic) -> None:
    resp = await client.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        stop="END",
    )
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "claude"
    assert resp.usage is not None and (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (11, 5)
    sent = anthropic_upstream.requests[-1]
    assert sent.headers["x-api-key"] == API_KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert sent.body["max_tokens"] == 4096 and sent.body["stop_sequences"] == ["END"]
    assert sent.body["model"] == "claude-fake-4"


async def test_streamed_chat_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Hello from the fake upstream"
    assert finish == "stop"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (11, 5)


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip(client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic, stream: bool) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        chunks = await client.chat.completions.create(model="claude", messages=messages, tools=TOOLS, stream=True)
        name, args, call_id, finish = "", "", "", None
        async for chunk in chunks:
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or []:
                    name += call.function.name or "" if call.function else ""
                    args += call.function.arguments or "" if call.function else ""
                    call_id = call.id or call_id
                finish = choice.finish_reason or finish
    else:
        resp = await client.chat.completions.create(model="claude", messages=messages, tools=TOOLS)
        call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
        name, args, call_id, finish = (
            call.function.name,
            call.function.arguments,
            call.id,
            resp.choices[0].finish_reason,
        )
    assert (name, args, call_id, finish) == ("get_weather", '{"city":"Paris"}', "toolu_fake_1", "tool_calls")
    assert anthropic_upstream.requests[-1].body["tools"][0]["input_schema"]["properties"] == {
        "city": {"type": "string"}
    }
    follow = await client.chat.completions.create(
        model="claude",
        tools=TOOLS,
        messages=[
            *messages,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21C"},
        ],
    )
    assert follow.choices[0].message.content == "Hello from the fake upstream"
    sent = anthropic_upstream.requests[-1].body["messages"]
    assert sent[1]["content"] == [
        {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "sunny, 21C"}],
    }


async def test_thinking_as_reasoning_content(client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic) -> None:
    resp = await client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], reasoning_effort="low", max_tokens=500
    )
    extra = resp.choices[0].message.model_extra or {}
    assert extra["reasoning_content"] == "Let me think."
    assert extra["thinking_blocks"][0]["signature"] == "sig-fake-123"
    sent = anthropic_upstream.requests[-1].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["max_tokens"] > 1024, "max_tokens must leave room beyond the thinking budget"


async def test_cache_tokens_count_as_prompt_tokens(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "long document", "cache_control": {"type": "ephemeral"}}],
            }
        ],
    )
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == 11 + 2 + 4
    assert resp.usage.prompt_tokens_details is not None and resp.usage.prompt_tokens_details.cached_tokens == 4


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["json_schema", "json_object"])
async def test_json_response_format(
    client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic, kind: str, stream: bool
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    fmt: Any = (
        {"type": kind, "json_schema": {"name": "a", "schema": schema}} if kind == "json_schema" else {"type": kind}
    )
    messages: Any = [{"role": "user", "content": "the answer?"}]
    if stream:
        chunks = await client.chat.completions.create(
            model="claude", messages=messages, response_format=fmt, stream=True
        )
        content, finish = "", None
        async for chunk in chunks:
            content += "".join(c.delta.content or "" for c in chunk.choices)
            finish = next((c.finish_reason for c in chunk.choices if c.finish_reason), finish)
    else:
        resp = await client.chat.completions.create(model="claude", messages=messages, response_format=fmt)
        content, finish = resp.choices[0].message.content or "", resp.choices[0].finish_reason
    assert (content, finish) == ('{"answer":42}', "stop")
    sent = anthropic_upstream.requests[-1].body
    if kind == "json_schema":  # Anthropic's structured outputs
        assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    else:  # no schema: a forced tool whose input is the answer
        assert sent["tool_choice"] == {"type": "tool", "name": "json_tool_call"}


async def test_wrong_upstream_key_is_401(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="claude-wrong-key", messages=[{"role": "user", "content": "hi"}])
    assert "sk-ant-wrong" not in str(info.value.body)


async def test_context_window_error_is_classified(
    client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic
) -> None:
    anthropic_upstream.fail(400, "prompt is too long: 210000 tokens > 200000 maximum")
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}], extra_body={"fallbacks": []}
        )
    assert info.value.code == "context_length_exceeded"
    assert len(anthropic_upstream.requests) == 1


async def test_rate_limit_is_retried(own_client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic) -> None:
    anthropic_upstream.fail(429, "rate limited", retry_after="0")
    resp = await own_client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": "hi"}]
    )
    assert resp.headers["x-litellm-attempted-retries"] == "1"
    assert resp.parse().choices[0].message.content == "Hello from the fake upstream"


async def test_error_event_before_content_is_retried(
    own_client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic
) -> None:
    anthropic_upstream.push(Action(error_after=2))  # message_start and ping, then an overloaded_error event
    stream = await own_client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the fake upstream"
    assert len(anthropic_upstream.requests) == 2


async def test_error_event_mid_stream_reaches_client(
    own_client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic
) -> None:
    anthropic_upstream.push(Action(error_after=5))
    stream = await own_client.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        async for _ in stream:
            pass
    assert "Overloaded" in str(info.value)


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_anthropic_falls_back_to_ollama(
    own_client: openai.AsyncOpenAI, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama, stream: bool
) -> None:
    anthropic_upstream.fail(529, "Overloaded", times=2)
    raw = await own_client.chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], stream=stream
    )
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert raw.headers["x-litellm-model-group"] == "llama3"
    if stream:
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    else:
        text = raw.parse().choices[0].message.content or ""
    assert text == "Hello from the fake upstream"
    assert len(anthropic_upstream.requests) == 2, "one try and one retry on the overloaded deployment"
    assert ollama_upstream.requests[-1].body["messages"] == [{"role": "user", "content": "hi"}]
