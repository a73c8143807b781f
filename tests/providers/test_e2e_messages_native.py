"""``/v1/messages`` served by an Anthropic deployment: the client's own request goes upstream, and
an overloaded Anthropic falls back to Ollama within the same request."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic
from tests.fakes.ollama_upstream import FakeOllama
from tests.providers.test_e2e_anthropic import config

TOOLS: list[Any] = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
]


@pytest.fixture(scope="module")
async def shared(
    module_proxy_factory: Any, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama
) -> ProxyServer:
    """The proxy the module shares; the overload cases (a 529 counts towards a cooldown) use ``proxy``."""
    text = config(anthropic_upstream.url, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text, env={"ANTHROPIC_API_KEY": API_KEY})
    return server


@pytest.fixture
async def proxy(proxy_factory: Any, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama) -> ProxyServer:
    text = config(anthropic_upstream.url, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, text, env={"ANTHROPIC_API_KEY": API_KEY})
    return server


@pytest.fixture
def client(shared: ProxyServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=shared.url, api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def own_client(proxy: ProxyServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)


async def test_native_request_keeps_what_openai_cannot_carry(
    client: anthropic.AsyncAnthropic, anthropic_upstream: FakeAnthropic
) -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    msg = await client.messages.create(
        model="claude",
        max_tokens=2000,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": [pdf, {"type": "text", "text": "summarise"}]}],
        extra_headers={"anthropic-beta": "files-api-2025-04-14"},
    )
    sent = anthropic_upstream.requests[-1]
    assert sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent.body["messages"][0]["content"][0] == pdf
    assert sent.body["model"] == "claude-fake-4" and sent.body["max_tokens"] == 2000
    assert sent.headers["anthropic-beta"] == "files-api-2025-04-14"
    assert sent.headers["x-api-key"] == API_KEY, "the upstream key, never the client's"
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].signature == "sig-fake-123"  # type: ignore[union-attr]
    assert msg.usage.input_tokens == 11
    assert (msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (4, 2)


async def test_streamed_thinking_and_signature(
    client: anthropic.AsyncAnthropic, anthropic_upstream: FakeAnthropic
) -> None:
    async with client.messages.stream(
        model="claude",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    thinking = final.content[0]
    assert thinking.thinking == "Let me think." and thinking.signature == "sig-fake-123"  # type: ignore[union-attr]
    assert final.content[1].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    assert final.usage.output_tokens == 5 and final.usage.input_tokens == 11
    follow = await client.messages.create(
        model="claude",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
            {"role": "user", "content": "and?"},
        ],
    )
    assert follow.content
    sent = anthropic_upstream.requests[-1].body["messages"][1]["content"][0]
    assert sent == {"type": "thinking", "thinking": "Let me think.", "signature": "sig-fake-123"}


async def test_streamed_tool_use(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model="claude", max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    use = final.content[0]
    assert (use.type, use.id, use.input) == ("tool_use", "toolu_fake_1", {"city": "Paris"})  # type: ignore[union-attr]


async def test_count_tokens_asks_anthropic(client: anthropic.AsyncAnthropic, anthropic_upstream: FakeAnthropic) -> None:
    raw = await client.messages.with_raw_response.count_tokens(
        model="claude", messages=[{"role": "user", "content": "hi"}]
    )
    assert "x-proxyllm-token-count" not in raw.headers
    assert (await raw.parse()).input_tokens == 18
    assert anthropic_upstream.requests[-1].path == "/v1/messages/count_tokens"
    assert anthropic_upstream.requests[-1].body["model"] == "claude-fake-4"


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_anthropic_falls_back_to_ollama(
    own_client: anthropic.AsyncAnthropic, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama, stream: bool
) -> None:
    anthropic_upstream.fail(529, "Overloaded", times=2)
    ask: Any = [{"role": "user", "content": "hi"}]
    if stream:
        async with own_client.messages.stream(model="claude", max_tokens=50, messages=ask) as events:
            msg = await events.get_final_message()
    else:
        msg = await own_client.messages.create(model="claude", max_tokens=50, messages=ask)
    assert msg.content[0].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    assert msg.model == "claude"
    assert len(anthropic_upstream.requests) == 2
    assert ollama_upstream.requests[-1].body["messages"] == [{"role": "user", "content": "hi"}]


async def test_overloaded_without_fallback_is_529_overloaded(
    own_client: anthropic.AsyncAnthropic, anthropic_upstream: FakeAnthropic
) -> None:
    anthropic_upstream.fail(529, "Overloaded", times=2)
    with pytest.raises(anthropic.APIStatusError) as info:
        await own_client.messages.create(
            model="claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}], extra_body={"fallbacks": []}
        )
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    sent = anthropic_upstream.requests[-1].body
    assert "fallbacks" not in sent, "proxy-only fields never reach the upstream"
