"""The Ollama frontend's pure translation: Ollama requests to OpenAI bodies, OpenAI streams to NDJSON."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from proxyllm.core.context import NativeRequest, RequestContext
from proxyllm.core.errors import ProxyError
from proxyllm.core.types import ComputeTime, Operation, Usage
from proxyllm.frontends.ollama import request
from proxyllm.frontends.ollama.answer import chat_answer, embed_answer
from proxyllm.frontends.ollama.stream import OllamaStreamEncoder
from proxyllm.providers.ollama.native import API, native_payload, renamer

PNG = "iVBORw0KGgoAAAANSUhEUg=="
JPEG = "/9j/4AAQSkZJRg=="


def sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def delta(**fields: Any) -> bytes:
    return sse({"choices": [{"index": 0, "delta": fields, "finish_reason": None}]})


def ctx_for(body: dict[str, Any], usage: Usage | None = None) -> RequestContext:
    ctx = RequestContext(request_id="r1", operation=Operation.CHAT, body=body)
    ctx.usage = usage
    return ctx


def test_chat_body() -> None:
    body = request.chat_body(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "what is this?", "images": [PNG, JPEG]},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"function": {"name": "look", "arguments": {"q": 1}}},
                        {"function": {"name": "find", "arguments": {}}},
                    ],
                },
                {"role": "tool", "content": "found", "tool_name": "find"},
                {"role": "tool", "content": "looked", "tool_name": "look"},
                {"role": "tool", "content": "late", "tool_name": "look"},
            ],
            "options": {"temperature": 0.2, "num_predict": 64, "stop": "END", "num_ctx": 8192, "top_k": 3},
            "format": "json",
            "think": "max",
            "keep_alive": "5m",
        }
    )
    assert body["stream"] is True  # Ollama streams unless told not to
    user = body["messages"][1]["content"]
    assert [p["image_url"]["url"][:22] for p in user[1:]] == ["data:image/png;base64,", "data:image/jpeg;base64"]
    calls = body["messages"][2]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_2_0", "call_2_1"] and calls[0]["function"]["arguments"] == '{"q":1}'
    assert body["messages"][3]["tool_call_id"] == "call_2_1" and body["messages"][4]["tool_call_id"] == "call_2_0"
    assert body["messages"][5] == {"role": "user", "content": "Result of tool look: late"}  # no call left to answer
    assert body["temperature"] == 0.2 and body["max_tokens"] == 64 and body["stop"] == ["END"]
    assert "num_ctx" not in body and "top_k" not in body and "keep_alive" not in body
    assert body["response_format"] == {"type": "json_object"} and body["reasoning_effort"] == "high"


def test_generate_and_embed_bodies() -> None:
    body = request.generate_body({"model": "m", "prompt": "hi", "system": "sys", "images": [PNG], "stream": False})
    assert body["stream"] is False and [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"][0] == {"type": "text", "text": "hi"}
    assert request.embed_body({"model": "m", "input": ["a", "b"], "dimensions": 8}, old=False) == {
        "model": "m",
        "input": ["a", "b"],
        "dimensions": 8,
    }
    assert request.embed_body({"name": "m", "prompt": "a"}, old=True) == {"model": "m", "input": "a"}


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": [], "options": {"temperature": float("inf")}},
        {"model": "m", "messages": [], "options": {"mirostat_tau": float("nan")}},
        {"model": "m", "messages": [], "options": {"seed": 1.5}},
        {"model": "m", "messages": [], "options": {"num_predict": True}},
        {"model": "m", "messages": [], "options": {"stop": [1]}},
        {"model": "m", "messages": [], "options": {"x": {"nested": 1}}},
        {"model": "m", "messages": [], "keep_alive": float("inf")},
        {"model": "m", "messages": [], "keep_alive": "x" * 100},
        {"model": "m", "messages": [{"role": "user", "content": 3}]},
        {
            "model": "m",
            "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}],
        },
        {"model": "m", "messages": [], "tools": [{"type": "function", "function": {}}]},
        {"model": "m", "messages": [], "format": "xml"},
        {"messages": []},
        {"model": 3, "messages": []},
    ],
)
def test_hostile_chat_fields_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(ProxyError) as info:
        request.chat_body(body)
    assert info.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "input": []},
        {"model": "m", "input": [1]},
        {"model": "m", "input": "a", "dimensions": -1},
        {"model": "m", "input": "a", "dimensions": 2**40},
        {"model": "m", "input": "a", "truncate": "yes"},
    ],
)
def test_hostile_embed_fields_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(ProxyError) as info:
        request.embed_body(body, old=False)
    assert info.value.status == 400


def test_stream_to_ndjson() -> None:
    ctx = ctx_for({"model": "m"}, Usage(7, 3))
    enc = OllamaStreamEncoder("m", generate=False)
    lines = enc.feed(delta(role="assistant", content="Hel") + delta(content="lo"))
    lines += enc.feed(delta(reasoning_content="hmm"))
    lines += enc.feed(delta(tool_calls=[{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]))
    lines += enc.feed(delta(tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}]))
    lines += enc.feed(
        sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}) + b"data: [DONE]\n\n"
    )
    lines += asyncio.run(enc.finish(ctx))
    parsed = [orjson.loads(line) for line in lines]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    assert [p["message"]["content"] for p in parsed[:2]] == ["Hel", "lo"]
    assert parsed[2]["message"]["thinking"] == "hmm"
    assert parsed[3]["message"]["tool_calls"] == [
        {"id": "c1", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}
    ]
    final = parsed[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["prompt_eval_count"] == 7 and final["eval_count"] == 3 and final["eval_duration"] >= 1
    assert all(p["done"] is False for p in parsed[:-1]) and {p["model"] for p in parsed} == {"m"}


def test_stream_errors_and_native_lines() -> None:
    enc = OllamaStreamEncoder("m", generate=True)
    assert enc.feed(b'data: {"error": {"message": "boom", "type": "api_error"}}\n\n') == [b'{"error":"boom"}\n']
    assert asyncio.run(enc.finish(ctx_for({"model": "m"}))) == []  # no done line after an error
    native = OllamaStreamEncoder("m", generate=False)
    line = b'{"model":"m","done":false}\n'
    assert native.feed(line) == [line]
    assert asyncio.run(native.finish(ctx_for({"model": "m"}))) == []  # the upstream sent its own final line


def test_answers_use_upstream_timings() -> None:
    ctx = ctx_for(
        {"model": "m"}, Usage(4, 2, compute=ComputeTime(load_ns=5, prompt_eval_ns=10, eval_ns=20, total_ns=40))
    )
    data = {"choices": [{"message": {"content": "hi", "reasoning_content": "r"}, "finish_reason": "length"}]}
    answer = chat_answer(data, ctx, generate=True)
    assert answer["response"] == "hi" and answer["thinking"] == "r" and answer["done_reason"] == "length"
    assert (answer["total_duration"], answer["load_duration"], answer["eval_duration"]) == (40, 5, 20)
    embedded = embed_answer(
        {"data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]}, ctx, old=False
    )
    assert embedded["embeddings"] == [[1.0], [2.0]]
    assert embed_answer({"data": [{"index": 0, "embedding": [1.0]}]}, ctx, old=True) == {"embedding": [1.0]}


def test_native_payload_and_renamer() -> None:
    from proxyllm.core.deployment import Deployment

    dep = Deployment(id="d", model_name="alias", provider=None, upstream_model="qwen3:8b", api_base="http://x")  # type: ignore[arg-type]
    ctx = ctx_for({"model": "alias", "max_tokens": 100})
    native = NativeRequest(API, {"model": "alias", "messages": [], "options": {"num_ctx": 4096}}, path="/api/chat")
    sent = orjson.loads(native_payload(native, dep, ctx, stream=True))
    assert sent == {
        "model": "qwen3:8b",
        "messages": [],
        "options": {"num_ctx": 4096, "num_predict": 100},
        "stream": True,
    }
    rename = renamer("qwen3:8b", "alias")
    assert rename is not None and renamer("a", "a") is None
    assert rename(b'{"model":"qwen3:8b","x":"qwen3:8b"}') == b'{"model":"alias","x":"qwen3:8b"}'
    assert rename(b'{"model": "qwen3:8b"}') == b'{"model": "alias"}'
