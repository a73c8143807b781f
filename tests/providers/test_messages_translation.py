"""``/v1/messages``: Anthropic request -> OpenAI request, OpenAI answer -> Anthropic message and events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.providers.anthropic.errors import anthropic_error_body
from proxyllm.providers.anthropic.messages_request import check_request, estimate_input_tokens, openai_request
from proxyllm.providers.anthropic.messages_response import anthropic_message
from proxyllm.providers.anthropic.messages_stream import AnthropicStreamEncoder, message_events
from tests.providers.conftest import fixture


def _events(raw: list[bytes]) -> list[list[Any]]:
    out = []
    for event in b"".join(raw).split(b"\n\n"):
        if event:
            name, data = event.split(b"\n")
            assert name.startswith(b"event: ") and data.startswith(b"data: ")
            out.append([name[7:].decode(), orjson.loads(data[6:])])
    return out


def test_request_from_fixture() -> None:
    data = fixture("messages_api.json")
    assert openai_request(check_request(data["anthropic_request"])) == data["openai_request"]


def test_response_from_fixture() -> None:
    data = fixture("messages_api.json")
    assert anthropic_message(data["openai_response"], message_id="msg_1", model="llama3") == data["anthropic_message"]


def test_stream_from_fixture() -> None:
    data = fixture("messages_api.json")
    encoder = AnthropicStreamEncoder(message_id="msg_1", model="llama3")
    raw = [b for event in data["openai_stream"] for b in encoder.feed(event.encode())]
    assert _events(raw) == data["anthropic_events"]
    assert encoder.finished and encoder.finish() == []


def test_error_mid_stream_ends_without_message_stop() -> None:
    data = fixture("messages_api.json")
    encoder = AnthropicStreamEncoder(message_id="msg_1", model="m")
    first = encoder.feed(data["openai_stream"][1].encode())
    events = _events(first + encoder.feed(data["openai_error_event"].encode()))
    assert events[-1] == data["anthropic_error_event"]
    assert encoder.finish() == [], "no message_stop after an error"


def test_stream_without_usage_chunk_uses_the_fallback() -> None:
    encoder = AnthropicStreamEncoder(message_id="m", model="x")
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
    encoder.feed(chunk)
    events = _events(encoder.finish({"prompt_tokens": 9, "completion_tokens": 2}))
    delta = next(e for name, e in events if name == "message_delta")
    assert delta["usage"]["input_tokens"] == 9 and delta["usage"]["output_tokens"] == 2
    assert delta["delta"]["stop_reason"] == "end_turn"


def test_whole_message_as_events() -> None:
    message = fixture("messages_api.json")["anthropic_message"]
    events = _events(message_events(message))
    assert [name for name, _ in events] == [
        "message_start",
        *["content_block_start", "content_block_delta", "content_block_stop"] * 3,
        "message_delta",
        "message_stop",
    ]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"model": "m", "max_tokens": "9", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ProxyError) as info:
        check_request(body)
    assert info.value.kind is ErrorKind.INVALID_REQUEST and info.value.param == param


def test_blocks_only_anthropic_can_take() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    body = {"model": "m", "messages": [{"role": "user", "content": [pdf, {"type": "text", "text": "sum up"}]}]}
    with pytest.raises(ProxyError, match="document"):
        openai_request(body)
    assert openai_request(body, strict=False)["messages"] == [{"role": "user", "content": "sum up"}]
    server_tool = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    with pytest.raises(ProxyError, match="web_search"):
        openai_request(server_tool)
    assert "tools" not in openai_request(server_tool, strict=False)


def test_output_config_maps_to_openai() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "output_config": {"effort": "max", "format": {"type": "json_schema", "schema": {"type": "object"}}},
    }
    got = openai_request(body)
    assert got["reasoning_effort"] == "high"
    assert got["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }


def test_estimate_grows_with_input() -> None:
    short = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    long = {"model": "m", "messages": [{"role": "user", "content": "hi " * 400}]}
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 10_000}}
    with_image = {"model": "m", "messages": [{"role": "user", "content": [image]}]}
    assert estimate_input_tokens(short) < estimate_input_tokens(long) == pytest.approx(303, abs=5)
    assert 1600 <= estimate_input_tokens(with_image) < 1700, "an image counts as a flat figure, not its base64 size"


def test_error_body_is_anthropic_shaped() -> None:
    body = orjson.loads(anthropic_error_body(ProxyError(ErrorKind.UNAVAILABLE, "Overloaded", status=529), "r1"))
    assert body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "r1"}
