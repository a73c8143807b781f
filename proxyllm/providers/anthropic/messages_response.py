"""OpenAI chat completion -> Anthropic Messages response, for ``/v1/messages`` (pure)."""

from __future__ import annotations

import orjson

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.providers.anthropic.common import anthropic_usage, stop_reason


def tool_input(arguments: JSONValue) -> JSONObject:
    """OpenAI tool-call arguments -> Anthropic ``input``; text that is not a JSON object is kept under ``_raw``."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        return {"_raw": str(arguments)}
    return value if isinstance(value, dict) else {"_raw": str(arguments)}


def thinking_blocks(message: JSONObject) -> list[JSONObject]:
    """Signed blocks when the upstream kept them (Anthropic), else the reasoning text unsigned."""
    blocks = [dict(b) for b in message.get("thinking_blocks") or [] if isinstance(b, dict) and b.get("type")]
    if blocks:
        return blocks
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        return [{"type": "thinking", "thinking": reasoning, "signature": ""}]
    return []


def anthropic_message(data: JSONObject, *, message_id: str, model: str) -> JSONObject:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProxyError(ErrorKind.UPSTREAM, "upstream answered without a choice")
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[JSONObject] = thinking_blocks(message)
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": fn.get("name") or "",
                "input": tool_input(fn.get("arguments")),
            }
        )
    if not content:
        content.append({"type": "text", "text": ""})
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(data.get("usage")),
    }
