"""OpenAI <-> Anthropic Messages translation, from recorded wire fixtures."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.providers.anthropic.common import anthropic_usage, usage_of
from proxyllm.providers.anthropic.errors import map_error
from proxyllm.providers.anthropic.request import messages_request
from proxyllm.providers.anthropic.response import chat_response
from proxyllm.providers.anthropic.stream import StreamTranslator
from proxyllm.providers.ollama.chat import ChunkEncoder
from tests.providers.conftest import fixture


def test_request_from_fixture() -> None:
    data = fixture("anthropic_messages.json")
    got = messages_request(data["openai_request"], "claude-sonnet-4-5", drop=False, stream=False)
    assert got == data["anthropic_request"]


def test_response_from_fixture() -> None:
    data = fixture("anthropic_messages.json")
    got = chat_response(data["anthropic_response"], model="claude", created=1700000000)
    assert got == data["openai_response"]
    assert usage_of(data["anthropic_response"]["usage"]).prompt_tokens == 2095 + 100 + 1000


def test_usage_round_trip_keeps_cache_figures() -> None:
    usage = {
        "input_tokens": 2095,
        "output_tokens": 503,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
    }
    openai_usage = fixture("anthropic_messages.json")["openai_response"]["usage"]
    assert anthropic_usage(openai_usage) == usage


def _chunks(events: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        out.append(orjson.loads(event[6:]))
    return out


def _feed(sse: str, translator: StreamTranslator) -> list[bytes]:
    events: list[bytes] = []
    for line in sse.split("\n"):
        if line.startswith("data:"):
            events.extend(translator.feed(orjson.loads(line[5:])))
    return events


def test_stream_from_fixture() -> None:
    data = fixture("anthropic_stream.json")
    encoder = ChunkEncoder(response_id="chatcmpl-1", model="claude", created=1, object_name="chat.completion.chunk")
    translator = StreamTranslator(encoder)
    chunks = _chunks(_feed(data["sse"], translator))
    assert {(c["id"], c["object"], c["model"]) for c in chunks} == {("chatcmpl-1", "chat.completion.chunk", "claude")}
    got = [{"delta": c["choices"][0]["delta"], "finish_reason": c["choices"][0]["finish_reason"]} for c in chunks]
    assert got == data["openai_choices"]
    assert translator.done
    assert translator.openai_usage() == data["usage"]


def test_stream_error_event_raises_a_retryable_error() -> None:
    data = fixture("anthropic_stream.json")
    encoder = ChunkEncoder(response_id="c", model="m", created=1, object_name="chat.completion.chunk")
    with pytest.raises(ProxyError) as info:
        _feed(data["error_sse"], StreamTranslator(encoder))
    assert info.value.kind is ErrorKind.UNAVAILABLE and info.value.retryable
    assert "Overloaded" in info.value.message


def test_json_mode_stream_turns_the_tool_input_into_content() -> None:
    encoder = ChunkEncoder(response_id="c", model="m", created=1, object_name="chat.completion.chunk")
    translator = StreamTranslator(encoder, json_mode=True)
    events = [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {}},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
    chunks = _chunks([b for e in events for b in translator.feed(e)])
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == '{"a":1}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_request_defaults_and_refusals() -> None:
    base: dict[str, Any] = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    assert messages_request(base, "m", drop=False, stream=True, default_max_tokens=123)["max_tokens"] == 123
    assert messages_request({**base, "max_tokens": 5}, "m", drop=False, stream=True)["stream"] is True
    with pytest.raises(ProxyError, match="logit_bias"):
        messages_request({**base, "logit_bias": {"1": 2}}, "m", drop=False, stream=False)
    assert "logit_bias" not in messages_request({**base, "logit_bias": {"1": 2}}, "m", drop=True, stream=False)
    with pytest.raises(ProxyError, match="'n' must be 1"):
        messages_request({**base, "n": 2}, "m", drop=False, stream=False)
    bad_image = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}
    with pytest.raises(ProxyError) as info:
        messages_request({**base, "messages": [bad_image]}, "m", drop=False, stream=False)
    assert info.value.param == "messages[0].content[0].image_url"
    choice = messages_request(
        {**base, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"},
        "m",
        drop=False,
        stream=False,
    )
    assert choice["tool_choice"] == {"type": "any"}
    assert choice["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_consecutive_tool_results_share_one_user_turn() -> None:
    calls = [{"id": f"t{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in (1, 2)]
    body = {
        "model": "x",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "t1", "content": "a"},
            {"role": "tool", "tool_call_id": "t2", "content": "b"},
        ],
    }
    got = messages_request(body, "m", drop=False, stream=False)["messages"]
    assert [m["role"] for m in got] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in got[2]["content"]] == ["t1", "t2"]


@pytest.mark.parametrize("case", fixture("anthropic_errors.json")["cases"], ids=lambda c: f"{c['status']}-{c['kind']}")
def test_error_mapping(case: dict[str, Any]) -> None:
    body = case["body"]
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    err = map_error(case["status"], raw, case["headers"])
    assert err.kind is ErrorKind[case["kind"]]
    assert err.status == case["status"]
    assert err.code == case["code"]
    assert err.retry_after == case.get("retry_after")
