"""``/v1/messages`` on an Anthropic deployment: Anthropic's answer byte for byte, usage (cache tokens
included) read on the way and priced at the cache prices, and errors still retried or logged."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic, sse
from tests.fakes.ollama_upstream import FakeOllama
from tests.limits.conftest import eventually

PRICES = {
    "in": Decimal("0.000003"),
    "out": Decimal("0.000015"),
    "read": Decimal("0.0000003"),
    "write": Decimal("0.00000375"),
}
HEADERS = {
    "x-api-key": MASTER_KEY,
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "interleaved-thinking-2025-05-14",
}


def config(anthropic_base: str, ollama_base: str) -> str:
    return f"""
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-fake-4
      api_base: {anthropic_base}
      input_cost_per_token: {PRICES["in"]}
      output_cost_per_token: {PRICES["out"]}
      cache_read_input_token_cost: {PRICES["read"]}
    model_info:
      cache_creation_input_token_cost: {PRICES["write"]}
  - model_name: llama3
    litellm_params:
      model: ollama_chat/llama3
      api_base: {ollama_base}
litellm_settings:
  fallbacks: [{{"claude": ["llama3"]}}]
general_settings:
  master_key: {MASTER_KEY}
"""


@pytest.fixture
async def proxy(proxy_factory: Any, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama) -> ProxyServer:
    text = config(anthropic_upstream.url, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, text, env={"ANTHROPIC_API_KEY": API_KEY})
    return server


@pytest.fixture(scope="module")
async def shared(
    module_proxy_factory: Any, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama
) -> ProxyServer:
    """``proxy`` shared by the cases that succeed or are refused before the upstream (each reads only the
    log lines of its own requests); the upstream-error cases keep their own (errors count towards a
    cooldown)."""
    text = config(anthropic_upstream.url, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text, env={"ANTHROPIC_API_KEY": API_KEY})
    return server


def block(index: int, content_block: dict[str, Any], *deltas: dict[str, Any]) -> list[bytes]:
    out = [sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block})]
    out += [sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    return [*out, sse("content_block_stop", {"type": "content_block_stop", "index": index})]


START_USAGE = {
    "input_tokens": 20,
    "cache_read_input_tokens": 100,
    "cache_creation_input_tokens": 10,
    "output_tokens": 1,
}
MESSAGE = {"id": "msg_upstream_7", "type": "message", "role": "assistant", "model": "claude-fake-4", "content": []}
HEAD = [
    sse("message_start", {"type": "message_start", "message": {**MESSAGE, "usage": START_USAGE}}),
    sse("ping", {"type": "ping"}),
]
CITATION = {"type": "web_search_result_location", "url": "https://example.org", "title": "Ex", "cited_text": "x"}
BLOCKS = [
    *block(
        0,
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "thinking_delta", "thinking": "Search first."},
        {"type": "signature_delta", "signature": "sig-A"},
    ),
    *block(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}),
    *block(
        2,
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        {"type": "input_json_delta", "partial_json": '{"query": "proxy"}'},
    ),
    *block(
        3,
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": [
                {
                    "type": "web_search_result",
                    "url": "https://example.org",
                    "title": "Ex",
                    "encrypted_content": "abc",
                    "page_age": None,
                }
            ],
        },
    ),
    *block(
        4,
        {"type": "text", "text": "", "citations": []},
        {"type": "citations_delta", "citation": CITATION},
        {"type": "text_delta", "text": "It is a proxy."},
    ),
    sse("content_block_future", {"type": "content_block_future", "index": 5}),  # an event type from the future
]
TAIL = [
    sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 7},
        },
    ),
    sse("message_stop", {"type": "message_stop"}),
]


def request_lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[dict[str, Any]]:
    records = [r for r in caplog.records if r.name == "proxyllm.requests"]
    return [r.request for r in records if r.request.get("request_id") == request_id]  # type: ignore[attr-defined]


async def test_stream_is_relayed_byte_for_byte_and_cache_tokens_priced(
    shared: ProxyServer, anthropic_upstream: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxyllm.requests")
    anthropic_upstream.raw_stream = [*HEAD, *BLOCKS, *TAIL]
    body = {
        "model": "claude",
        "max_tokens": 1000,
        "stream": True,
        "thinking": {"type": "adaptive"},
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        "messages": [{"role": "user", "content": "What is proxyllm?"}],
    }
    async with httpx.AsyncClient(base_url=shared.url, timeout=30) as c:
        async with c.stream("POST", "/v1/messages?beta=true", json=body, headers=HEADERS) as resp:
            received = b"".join([chunk async for chunk in resp.aiter_bytes()])
    assert resp.status_code == 200
    assert received == b"".join(anthropic_upstream.raw_stream), "every event as Anthropic sent it, unknown ones too"
    sent = anthropic_upstream.requests[-1]
    assert sent.body["tools"] == body["tools"] and sent.body["thinking"] == {"type": "adaptive"}
    assert sent.headers["anthropic-beta"] == HEADERS["anthropic-beta"]
    call_id = resp.headers["x-litellm-call-id"]
    await eventually(lambda: bool(request_lines(caplog, call_id)))
    (line,) = request_lines(caplog, call_id)
    assert (line["prompt_tokens"], line["completion_tokens"]) == (130, 7)
    cost = 20 * PRICES["in"] + 100 * PRICES["read"] + 10 * PRICES["write"] + 7 * PRICES["out"]
    assert Decimal(line["cost"]) == cost


async def test_plain_answer_is_anthropics_own_and_priced_with_cache_tokens(
    shared: ProxyServer, anthropic_upstream: FakeAnthropic
) -> None:
    client = anthropic.AsyncAnthropic(base_url=shared.url, api_key=MASTER_KEY, max_retries=0)
    raw = await client.messages.with_raw_response.create(
        model="claude",
        max_tokens=500,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
        messages=[{"role": "user", "content": "hi"}],
    )
    msg = await raw.parse()
    assert msg.id == "msg_fake_01", "the upstream's message, not a translation"
    assert [b.type for b in msg.content] == ["thinking", "redacted_thinking", "text"]
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (
        11,
        4,
        2,
    )
    cost = 11 * PRICES["in"] + 4 * PRICES["read"] + 2 * PRICES["write"] + msg.usage.output_tokens * PRICES["out"]
    assert Decimal(raw.headers["x-litellm-response-cost"]) == cost
    await client.close()


async def test_streamed_adaptive_thinking_through_the_sdk(shared: ProxyServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=shared.url, api_key=MASTER_KEY, max_retries=0)
    async with client.messages.stream(
        model="claude",
        max_tokens=500,
        thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "redacted_thinking", "text"]
    assert final.content[0].signature == "sig-fake-123"  # type: ignore[union-attr]
    assert final.content[1].data == "EmwKAhgBEgy3va3pzix/LafPsn4a"  # type: ignore[union-attr]
    await client.close()


async def test_error_before_content_falls_back_without_leaking_the_held_start(
    proxy: ProxyServer, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama
) -> None:
    overloaded = sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    anthropic_upstream.raw_stream = [*HEAD, overloaded]
    body = {"model": "claude", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post("/v1/messages", json=body, headers=HEADERS)
    assert resp.status_code == 200 and resp.headers["x-litellm-model-group"] == "llama3"
    assert b"msg_upstream_7" not in resp.content, "the failed attempt's message_start never reached the client"
    assert resp.content.count(b"event: message_start") == 1 and resp.content.endswith(
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert any(r.path == "/api/chat" for r in ollama_upstream.requests)


async def test_error_after_content_ends_with_an_error_event(
    proxy: ProxyServer, anthropic_upstream: FakeAnthropic
) -> None:
    overloaded = sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    anthropic_upstream.raw_stream = [*HEAD, *BLOCKS[:3], overloaded]
    body = {"model": "claude", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post("/v1/messages", json=body, headers=HEADERS)
    assert resp.content.startswith(b"".join([*HEAD, *BLOCKS[:3]]))
    name, data = resp.content.rstrip(b"\n").rsplit(b"\n\n", 1)[-1].split(b"\n")
    assert name == b"event: error"
    assert orjson.loads(data[6:])["error"]["type"] == "overloaded_error"
    assert b"message_stop" not in resp.content


async def test_refused_requests_are_anthropic_shaped_and_logged(
    shared: ProxyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxyllm.requests")
    hi = [{"role": "user", "content": "hi"}]
    bad: list[tuple[str, bytes, str | None]] = [
        (
            "/v1/messages?beta=true",
            orjson.dumps({"model": "claude", "max_tokens": 10, "thinking": {"type": "always"}, "messages": hi}),
            "thinking.type",
        ),
        ("/v1/messages", orjson.dumps({"model": "claude", "max_tokens": -1, "messages": hi}), "max_tokens"),
        ("/v1/messages", b'{"model": "claude", "max_tokens": 10, "temperature": Infinity, "messages": []}', None),
        (
            "/v1/messages/count_tokens?beta=true",
            orjson.dumps({"model": "claude", "messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            "/v1/messages",
            orjson.dumps({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": [7]}]}),
            "messages[0].content[0]",
        ),
    ]
    async with httpx.AsyncClient(base_url=shared.url, timeout=30) as c:
        answers = [
            await c.post(path, content=raw, headers={**HEADERS, "content-type": "application/json"})
            for path, raw, _ in bad
        ]
    for resp, (path, _, field) in zip(answers, bad, strict=True):
        assert resp.status_code == 400, resp.text
        data = resp.json()
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
        if field:
            assert field in data["error"]["message"]
        call_id = resp.headers["x-litellm-call-id"]
        await eventually(lambda call_id=call_id: bool(request_lines(caplog, call_id)))
        (line,) = request_lines(caplog, call_id)
        assert line["status"] == 400 and line["error"] == "invalid_request"
        assert line["error_message"] == data["error"]["message"]
        assert line["path"] == path.split("?")[0]


async def test_cache_priced_cost_in_spend_logs_and_marked_up_price(
    proxy_factory: Any, anthropic_upstream: FakeAnthropic, ollama_upstream: FakeOllama, database_url: str
) -> None:
    text = config(anthropic_upstream.url, ollama_upstream.url)
    env = {"ANTHROPIC_API_KEY": API_KEY, "DATABASE_URL": database_url, "PROXYLLM_MARKUP_PERCENT": "50"}
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, text, env=env)
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    anthropic_upstream.raw_stream = [*HEAD, *BLOCKS, *TAIL]
    body = {"model": "claude", "max_tokens": 1000, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        key = (await c.post("/key/generate", json={"key_alias": "claude-code"}, headers=admin)).json()["key"]
        resp = await c.post("/v1/messages?beta=true", json=body, headers={**HEADERS, "x-api-key": key})
        assert resp.status_code == 200 and resp.content == b"".join(anthropic_upstream.raw_stream)
        call_id = resp.headers["x-litellm-call-id"]
        await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
        rows = (await c.get("/spend/logs", params={"request_id": call_id}, headers=admin)).json()
    (row,) = rows
    cost = 20 * PRICES["in"] + 100 * PRICES["read"] + 10 * PRICES["write"] + 7 * PRICES["out"]
    assert (row["prompt_tokens"], row["completion_tokens"], row["key_alias"]) == (130, 7, "claude-code")
    assert Decimal(repr(row["spend"])) == cost
    assert Decimal(repr(row["price"])) == cost * Decimal("1.5")
