"""Ollama translation, request and response, from wire fixtures built from Ollama's API reference."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.providers.ollama import chat, embed, generate
from proxyllm.providers.ollama.provider import OllamaProvider

FIXTURES = Path(__file__).parent / "fixtures"
CHAT = json.loads((FIXTURES / "ollama_chat.json").read_text())
OTHER = json.loads((FIXTURES / "ollama_generate_embed.json").read_text())


def decode_events(raw: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for event in raw:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        events.append(orjson.loads(event[6:-2]))
    return events


def test_chat_request() -> None:
    body = CHAT["request"]["openai"]
    assert chat.chat_request(body, "llama3:8b", drop=False, stream=False) == CHAT["request"]["ollama"]


@pytest.mark.parametrize("case", CHAT["responses"], ids=lambda c: c["name"])
def test_chat_response(case: dict[str, Any]) -> None:
    out = chat.chat_response(case["ollama"], model="llama3", response_id="chatcmpl-1", created=1)
    choice = out["choices"][0]
    message = dict(choice["message"])
    for call in message.get("tool_calls", []):
        assert call.pop("id").startswith("call_")  # generated: Ollama's calls carry no id
    assert message == case["openai_message"]
    assert choice["finish_reason"] == case["finish_reason"]
    assert out["usage"] == case["usage"] and out["object"] == "chat.completion" and out["model"] == "llama3"


def test_chat_stream() -> None:
    encoder = chat.ChunkEncoder(response_id="chatcmpl-1", model="qwen3", created=7, object_name="chat.completion.chunk")
    translator = chat.ChatStreamTranslator(encoder)
    raw = [event for line in CHAT["stream"]["ndjson"] for event in translator.feed(line)]
    events = decode_events(raw)
    assert [e["choices"][0] for e in events] == CHAT["stream"]["openai_choices"]
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == "chatcmpl-1" for e in events)
    assert translator.usage is not None and translator.usage.as_openai() == CHAT["stream"]["usage"]
    usage_event = decode_events([encoder.usage(translator.usage)])[0]
    assert usage_event["choices"] == [] and usage_event["usage"] == CHAT["stream"]["usage"]


def test_streamed_tool_calls_get_ids_and_indexes() -> None:
    translator = chat.ChatStreamTranslator(
        chat.ChunkEncoder(response_id="r", model="m", created=1, object_name="chat.completion.chunk")
    )
    line = {
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "a", "arguments": {"x": 1}}},
                {"function": {"name": "b", "arguments": {}}},
            ],
        },
        "done": False,
    }
    done = {
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 1,
        "eval_count": 1,
    }
    events = decode_events(translator.feed(line) + translator.feed(done))
    calls = events[0]["choices"][0]["delta"]["tool_calls"]
    assert [c["index"] for c in calls] == [0, 1] and calls[0]["function"] == {"name": "a", "arguments": '{"x":1}'}
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tool_choice": "required"}, "tool_choice"),  # a forced call with no tools to call
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}
                ]
            },
            "messages[0].content[0].image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0]",
        ),
    ],
)
def test_chat_request_refuses_what_ollama_cannot_do(change: dict[str, Any], param: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], **change}
    with pytest.raises(ProxyError) as info:
        chat.chat_request(body, "m", drop=False, stream=False)
    assert info.value.kind is ErrorKind.INVALID_REQUEST and info.value.param == param


def test_drop_params_drops_instead() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "logprobs": True,
        "n": 2,
        "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    sent = chat.chat_request(body, "m", drop=True, stream=True)
    assert "logprobs" not in sent and "n" not in sent and sent["stream"] is True
    # a forced tool choice is not dropped but emulated: the output is constrained to the call's arguments
    assert "tools" not in sent and sent["format"] == {"type": "object", "properties": {}}


def test_json_schema_and_reasoning() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "high",
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    sent = chat.chat_request(body, "m", drop=False, stream=False)
    assert sent["format"] == schema and sent["think"] is True
    none = chat.chat_request(
        {
            **body,
            "reasoning_effort": "none",
            "tool_choice": "none",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
        "m",
        drop=False,
        stream=False,
    )
    assert none["think"] is False and "tools" not in none


def test_completion_request_and_response() -> None:
    case = OTHER["completion"]
    assert generate.completion_request(case["openai"], "llama3:8b", drop=False, stream=False) == case["ollama"]
    out = generate.completion_response(case["response"], model="llama3", response_id="cmpl-1", created=1)
    assert out["choices"][0] == case["choice"] and out["object"] == "text_completion"
    assert out["usage"] == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    with pytest.raises(ProxyError) as info:
        generate.completion_request({"model": "m", "prompt": ["a", "b"]}, "m", drop=False, stream=False)
    assert info.value.param == "prompt"


def test_chat_rendered_for_generate() -> None:
    case = OTHER["chat_as_generate"]
    assert generate.chat_as_generate_request(case["openai"], "llama3:8b", drop=False, stream=True) == case["ollama"]
    single = generate.chat_as_generate_request(
        {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}, "m", drop=False, stream=False
    )
    assert single["prompt"] == "Hi" and "system" not in single


def test_generate_stream_as_text_and_as_chat() -> None:
    case = OTHER["generate_stream"]
    encoder = chat.ChunkEncoder(response_id="cmpl-1", model="llama3", created=1, object_name="text_completion")
    text = generate.GenerateStreamTranslator(encoder, as_chat=False)
    events = decode_events([e for line in case["ndjson"] for e in text.feed(line)])
    assert [e["choices"][0] for e in events] == case["text_choices"]
    as_chat = generate.GenerateStreamTranslator(encoder, as_chat=True)
    deltas = [e["choices"][0] for e in decode_events([e for line in case["ndjson"] for e in as_chat.feed(line)])]
    assert deltas[0]["delta"] == {"role": "assistant", "content": "Blue"} and deltas[-1]["finish_reason"] == "stop"
    assert as_chat.usage is not None and as_chat.usage.total_tokens == 8


def test_embeddings_float_and_base64() -> None:
    case = OTHER["embed"]
    assert embed.embed_request(case["openai"], "nomic-embed-text", drop=False) == case["ollama"]
    floats = embed.embed_response(case["response"], model="nomic", encoding_format="float")
    assert [d["embedding"] for d in floats["data"]] == case["response"]["embeddings"]
    assert floats["usage"] == case["usage"] and [d["index"] for d in floats["data"]] == [0, 1]
    packed = embed.embed_response(case["response"], model="nomic", encoding_format="base64")
    decoded = struct.unpack("<2f", base64.b64decode(packed["data"][1]["embedding"]))
    assert decoded == pytest.approx(case["response"]["embeddings"][1], rel=1e-6)
    with pytest.raises(ProxyError):
        embed.embed_request({"model": "m", "input": [[1, 2, 3]]}, "m", drop=False)


def test_ollama_errors_and_context_window() -> None:
    provider = OllamaProvider.__new__(OllamaProvider)
    missing = provider.map_error(404, b'{"error":"model \\"x\\" not found, try pulling it first"}', {})
    assert missing.kind is ErrorKind.NOT_FOUND and "try pulling it first" in missing.message
    too_long = provider.map_error(400, b'{"error":"input length exceeds the context length"}', {})
    assert too_long.kind is ErrorKind.CONTEXT_WINDOW_EXCEEDED
    busy = provider.map_error(503, b'{"error":"server busy"}', {"retry-after": "3"})
    assert busy.retryable and busy.retry_after == 3
