"""OpenAI <-> Gemini translation, from recorded wire fixtures."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.providers.gemini import embed
from proxyllm.providers.gemini.errors import map_error
from proxyllm.providers.gemini.request import SIGNATURE_SEP, generate_request
from proxyllm.providers.gemini.response import StreamTranslator, chat_response, openai_usage
from proxyllm.providers.ollama.chat import ChunkEncoder
from tests.providers.conftest import fixture


def test_request_from_fixture() -> None:
    data = fixture("gemini_generate.json")
    assert generate_request(data["openai_request"], "gemini-2.5-flash", drop=False) == data["gemini_request"]


def test_gemini_3_uses_thinking_levels() -> None:
    body = {"model": "g", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"}
    config = generate_request(body, "gemini-3-pro-preview", drop=False)["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingLevel": "high", "includeThoughts": True}


def test_response_from_fixture() -> None:
    data = fixture("gemini_generate.json")
    got = chat_response(data["gemini_response"], model="gemini", response_id="fallback", created=7)
    assert got["id"] == "mT3aaJ2lKfKsz7IP2Mi8gQk" and got["model"] == "gemini" and got["created"] == 7
    choice = got["choices"][0]
    call = choice["message"]["tool_calls"][0]
    call_id = call.pop("id")
    assert call_id.startswith("call_") and call_id.endswith(SIGNATURE_SEP + data["signature"])
    assert choice["message"] == data["openai_message"]
    assert choice["finish_reason"] == data["finish_reason"]
    assert got["usage"] == data["usage"]


def test_signature_travels_back_in_the_tool_call_id() -> None:
    data = fixture("gemini_generate.json")
    message = chat_response(data["gemini_response"], model="g", response_id="r", created=1)["choices"][0]["message"]
    body = {"model": "g", "messages": [{"role": "user", "content": "x"}, message]}
    parts = generate_request(body, "g", drop=False)["contents"][1]["parts"]
    assert parts[-1] == {
        "functionCall": {"name": "get_time", "args": {"zone": "Europe/Paris"}},
        "thoughtSignature": "U2lnMg==",
    }


def _stream(sse: str) -> tuple[StreamTranslator, list[dict[str, Any]]]:
    encoder = ChunkEncoder(response_id="chatcmpl-1", model="gemini", created=1, object_name="chat.completion.chunk")
    translator = StreamTranslator(encoder)
    chunks = []
    for line in sse.split("\n"):
        if line.startswith("data:"):
            chunks.extend(orjson.loads(e[6:]) for e in translator.feed(orjson.loads(line[5:])))
    return translator, chunks


def test_stream_from_fixture() -> None:
    data = fixture("gemini_stream.json")
    translator, chunks = _stream(data["sse"])
    assert [{k: c["choices"][0][k] for k in ("index", "delta", "finish_reason")} for c in chunks] == data[
        "openai_choices"
    ]
    usage = translator.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        data["usage"]["prompt_tokens"],
        data["usage"]["completion_tokens"],
    )
    assert translator.finished == {0}


def test_blocked_prompt_is_content_policy() -> None:
    data = fixture("gemini_stream.json")
    with pytest.raises(ProxyError) as info:
        _stream(data["blocked_sse"])
    assert info.value.kind is ErrorKind.CONTENT_POLICY and "SAFETY" in info.value.message
    with pytest.raises(ProxyError) as again:
        chat_response(orjson.loads(data["blocked_sse"][6:]), model="g", response_id="r", created=1)
    assert again.value.kind is ErrorKind.CONTENT_POLICY


def test_answer_withheld_for_safety_is_content_policy() -> None:
    stopped = fixture("gemini_stream.json")["safety_stop"]
    with pytest.raises(ProxyError) as info:
        chat_response(stopped, model="g", response_id="r", created=1)
    assert info.value.kind is ErrorKind.CONTENT_POLICY and info.value.code == "content_policy_violation"


def test_answer_cut_short_for_safety_ends_with_content_filter() -> None:
    data = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "Partial"}]}, "finishReason": "SAFETY", "index": 0}
        ]
    }
    choice = chat_response(data, model="g", response_id="r", created=1)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Partial", "content_filter")


def test_usage_counts_thoughts_as_output() -> None:
    meta = {"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "thoughtsTokenCount": 5}}
    assert openai_usage(meta)["completion_tokens"] == 9


@pytest.mark.parametrize("case", fixture("gemini_errors.json")["cases"], ids=lambda c: f"{c['status']}-{c['kind']}")
def test_error_mapping(case: dict[str, Any]) -> None:
    err = map_error(case["status"], orjson.dumps(case["body"]), case["headers"])
    assert err.kind is ErrorKind[case["kind"]]
    assert err.retry_after == case["retry_after"]
    assert err.message == case["body"]["error"]["message"]


@pytest.mark.parametrize("shape", ["single", "batch"])
def test_embeddings_from_fixture(shape: str) -> None:
    data = fixture("gemini_embed.json")[shape]
    method, request = embed.embed_request(data["openai"], "gemini-embedding-001", drop=False)
    assert (method, request) == (data["method"], data["gemini"])
    usage = embed.estimate_usage(embed.texts_of(data["openai"]))
    got = embed.embed_response(data["response"], model="e", encoding_format=None, usage=usage)
    assert [d["embedding"] for d in got["data"]] == embed.vectors_of(data["response"])
    assert usage.estimated and got["usage"]["prompt_tokens"] == usage.prompt_tokens > 0


def test_embeddings_refuse_token_ids() -> None:
    with pytest.raises(ProxyError, match="text only"):
        embed.embed_request({"model": "e", "input": [[1, 2, 3]]}, "m", drop=False)
