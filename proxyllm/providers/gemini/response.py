"""Gemini ``GenerateContentResponse`` -> OpenAI chat completion and stream chunks (pure).

A prompt Gemini refuses (``promptFeedback.blockReason``) or an answer stopped for safety before any
content is a CONTENT_POLICY error, so ``content_policy_fallbacks`` can route around it; an answer cut
short for safety after some content ends with ``finish_reason: content_filter``.
"""

from __future__ import annotations

import secrets

import orjson

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.types import Usage
from proxyllm.providers.gemini.errors import error_from_body
from proxyllm.providers.gemini.request import SIGNATURE_SEP
from proxyllm.providers.sse import ChunkEncoder

FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"})
FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}


def finish_reason(reason: JSONValue, has_calls: bool) -> str:
    if reason in FILTERED:
        return "content_filter"
    if has_calls:
        return "tool_calls"
    return FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"


def _count(data: JSONObject, key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) else 0


def usage_of(data: JSONValue) -> Usage:
    """usageMetadata -> Usage: thinking tokens are output tokens (billed as such)."""
    meta = data.get("usageMetadata") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return Usage()
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    cached = min(_count(meta, "cachedContentTokenCount"), prompt)  # part of promptTokenCount
    completion = _count(meta, "candidatesTokenCount") + _count(meta, "thoughtsTokenCount")
    return Usage(prompt, completion, cached_tokens=cached)


def openai_usage(data: JSONValue) -> JSONObject:
    out: JSONObject = usage_of(data).as_openai()
    meta = data.get("usageMetadata") if isinstance(data, dict) else None
    if isinstance(meta, dict):
        out["prompt_tokens_details"] = {"cached_tokens": _count(meta, "cachedContentTokenCount")}
        out["completion_tokens_details"] = {"reasoning_tokens": _count(meta, "thoughtsTokenCount")}
    return out


def check_blocked(data: JSONObject) -> None:
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason and not data.get("candidates"):
        raise ProxyError(
            ErrorKind.CONTENT_POLICY, f"Gemini blocked the prompt ({reason})", code="content_policy_violation"
        )


def tool_call(call: JSONObject, signature: JSONValue) -> JSONObject:
    call_id = str(call.get("id") or "call_" + secrets.token_hex(12))
    if isinstance(signature, str) and signature:
        call_id += SIGNATURE_SEP + signature
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": call.get("name", ""), "arguments": orjson.dumps(call.get("args") or {}).decode()},
    }


def read_parts(parts: JSONValue) -> tuple[str, str, list[JSONObject]]:
    """Candidate parts -> (text, reasoning text, OpenAI tool calls)."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[JSONObject] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            calls.append(tool_call(part["functionCall"], part.get("thoughtSignature")))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    return "".join(texts), "".join(thoughts), calls


def chat_response(data: JSONObject, *, model: str, response_id: str, created: int) -> JSONObject:
    check_blocked(data)
    choices = []
    for position, cand in enumerate(data.get("candidates") or []):
        text, thoughts, calls = read_parts((cand.get("content") or {}).get("parts"))
        reason = cand.get("finishReason")
        if reason in FILTERED and not text and not calls and len(data["candidates"]) == 1:
            raise ProxyError(
                ErrorKind.CONTENT_POLICY, f"Gemini withheld its answer ({reason})", code="content_policy_violation"
            )
        message: JSONObject = {"role": "assistant", "content": text if text or not calls else None}
        if thoughts:
            message["reasoning_content"] = thoughts
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": cand.get("index", position),
                "message": message,
                "finish_reason": finish_reason(reason, bool(calls)),
                "logprobs": None,
            }
        )
    if not choices:
        raise ProxyError(ErrorKind.UPSTREAM, "Gemini returned no candidates")
    return {
        "id": data.get("responseId") or response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": openai_usage(data),
    }


class StreamTranslator:
    """``streamGenerateContent?alt=sse`` events -> OpenAI chunks. Gemini sends no end marker: the
    stream ends with the connection, after an event that carries ``finishReason``."""

    def __init__(self, encoder: ChunkEncoder) -> None:
        self.encoder = encoder
        self.started: set[int] = set()
        self.tool_calls: dict[int, int] = {}
        self.finished: set[int] = set()
        self.last: JSONObject = {}

    @property
    def usage(self) -> Usage:
        return usage_of(self.last)

    def _delta(self, index: int, delta: JSONObject, finish: str | None = None) -> bytes:
        if index not in self.started:
            self.started.add(index)
            delta = {"role": "assistant", **delta}
        return self.encoder.choice({"index": index, "delta": delta, "finish_reason": finish, "logprobs": None})

    def feed(self, data: JSONObject) -> list[bytes]:
        if isinstance(data.get("error"), dict):
            raise error_from_body(data, status=None)
        if not self.started:
            check_blocked(data)
        if data.get("usageMetadata"):
            self.last = data
        out: list[bytes] = []
        for position, cand in enumerate(data.get("candidates") or []):
            index = cand.get("index", position)
            text, thoughts, calls = read_parts((cand.get("content") or {}).get("parts"))
            reason = cand.get("finishReason")
            if reason in FILTERED and not text and not calls and index not in self.started:
                raise ProxyError(
                    ErrorKind.CONTENT_POLICY, f"Gemini withheld its answer ({reason})", code="content_policy_violation"
                )
            if thoughts:
                out.append(self._delta(index, {"reasoning_content": thoughts}))
            if text:
                out.append(self._delta(index, {"content": text}))
            if calls:
                start = self.tool_calls.get(index, 0)
                for k, call in enumerate(calls):
                    call["index"] = start + k
                self.tool_calls[index] = start + len(calls)
                out.append(self._delta(index, {"tool_calls": calls}))
            if reason and index not in self.finished:
                self.finished.add(index)
                out.append(self._delta(index, {}, finish_reason(reason, self.tool_calls.get(index, 0) > 0)))
        return out
