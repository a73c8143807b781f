"""What both directions of the Anthropic translation share: stop reasons, usage, images, tool arguments."""

from __future__ import annotations

import orjson

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.types import Usage

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
# OpenAI ``reasoning_effort`` -> Anthropic thinking budget (tokens).
THINKING_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096}
JSON_TOOL = "json_tool_call"  # the forced tool that carries ``response_format`` output

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: JSONValue, *, json_mode: bool = False) -> str:
    reason = FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "stop" if json_mode and reason == "tool_calls" else reason


def stop_reason(finish: JSONValue) -> str:
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def _int(data: JSONObject, key: str) -> int:
    value = data.get(key)
    return value if type(value) is int and value > 0 else 0


def usage_of(data: JSONValue) -> Usage:
    """Anthropic usage -> proxy Usage: prompt tokens count every input token, cached or not."""
    if not isinstance(data, dict):
        return Usage()
    read, created = _int(data, "cache_read_input_tokens"), _int(data, "cache_creation_input_tokens")
    prompt = _int(data, "input_tokens") + read + created
    return Usage(prompt, _int(data, "output_tokens"), cached_tokens=read, cache_creation_tokens=created)


def openai_usage(data: JSONValue) -> JSONObject:
    """Anthropic usage -> OpenAI usage, keeping the cache figures."""
    usage = usage_of(data)
    out: JSONObject = usage.as_openai()
    if isinstance(data, dict):
        read, created = _int(data, "cache_read_input_tokens"), _int(data, "cache_creation_input_tokens")
        out["prompt_tokens_details"] = {"cached_tokens": read}
        out["cache_read_input_tokens"] = read
        out["cache_creation_input_tokens"] = created
    return out


def anthropic_usage(data: JSONValue) -> dict[str, int]:
    """OpenAI usage -> Anthropic usage: input_tokens excludes what was read from or written to the cache."""
    if not isinstance(data, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    details = data.get("prompt_tokens_details")
    cached = _int(details, "cached_tokens") if isinstance(details, dict) else 0
    cached = cached or _int(data, "cache_read_input_tokens")
    created = _int(data, "cache_creation_input_tokens")
    return {
        "input_tokens": max(0, _int(data, "prompt_tokens") - cached - created),
        "output_tokens": _int(data, "completion_tokens"),
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": cached,
    }


def image_source(url: JSONValue, where: str) -> JSONObject:
    """An OpenAI ``image_url`` (data URL or http URL) -> an Anthropic image ``source``."""
    if not isinstance(url, str) or not url:
        raise invalid_request("image_url.url must be a non-empty string", param=where)
    if url.startswith("data:"):
        head, sep, data = url.partition(",")
        media_type = head[5:].split(";", 1)[0]
        if not sep or ";base64" not in head or not media_type:
            raise invalid_request("image data URLs must look like data:image/png;base64,...", param=where)
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise invalid_request("image_url.url must be a data URL or an http(s) URL", param=where)


def image_url(source: JSONValue, where: str) -> str:
    """An Anthropic image ``source`` -> an OpenAI image URL (a data URL for base64 images)."""
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return f"data:{source.get('media_type') or 'image/png'};base64,{source['data']}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise invalid_request("image source must be {type: base64, media_type, data} or {type: url, url}", param=where)


def parse_arguments(raw: JSONValue, where: str) -> JSONObject:
    """OpenAI tool-call arguments (a JSON string) -> an object."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise invalid_request("tool call arguments must be a JSON object", param=where) from None
    if not isinstance(value, dict):
        raise invalid_request("tool call arguments must be a JSON object", param=where)
    return value


def dumps(value: JSONValue) -> str:
    return orjson.dumps(value).decode()
