"""Anthropic Messages response -> OpenAI chat.completion (pure)."""

from __future__ import annotations

from proxyllm.core.jsontypes import JSONObject
from proxyllm.providers.anthropic.common import JSON_TOOL, dumps, finish_reason, openai_usage


def tool_call(block: JSONObject) -> JSONObject:
    return {
        "id": block.get("id") or "",
        "type": "function",
        "function": {"name": block.get("name") or "", "arguments": dumps(block.get("input") or {})},
    }


def chat_response(data: JSONObject, *, model: str, created: int, json_mode: bool = False) -> JSONObject:
    """One Anthropic message -> an OpenAI chat completion.

    Thinking arrives as ``reasoning_content``; the signed blocks themselves are kept in
    ``thinking_blocks`` (LiteLLM's field) so a client can send them back on the next turn.
    """
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[JSONObject] = []
    calls: list[JSONObject] = []
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            if json_mode and block.get("name") == JSON_TOOL:
                texts.append(dumps(block.get("input") or {}))
            else:
                calls.append(tool_call(block))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking", "")))
            thinking_blocks.append(block)
        elif kind == "redacted_thinking":
            thinking_blocks.append(block)
    message: JSONObject = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    if calls:
        message["tool_calls"] = calls
    return {
        "id": data.get("id") or "",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(data.get("stop_reason"), json_mode=json_mode),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(data.get("usage")),
    }
