"""OpenAI sampling parameters <-> Ollama ``options``; shared by the chat and generate translations."""

from __future__ import annotations

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue

# OpenAI name (or an Ollama-only name LiteLLM passes through) -> Ollama options key.
OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "stop": "stop",
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "num_ctx": "num_ctx",
    "num_predict": "num_predict",
    "repeat_penalty": "repeat_penalty",
    "min_p": "min_p",
    "mirostat": "mirostat",
}
# Accepted and meaningless to Ollama: dropped without a word.
IGNORED = frozenset({"user", "stream_options", "metadata", "store", "service_tier"})
COMMON = frozenset(OPTION_NAMES) | IGNORED | {"model", "stream", "keep_alive", "options", "n", "format"}


def build_options(body: JSONObject) -> JSONObject:
    options: JSONObject = dict(body.get("options") or {})
    for name, target in OPTION_NAMES.items():
        value = body.get(name)
        if value is not None:
            options[target] = [value] if name == "stop" and isinstance(value, str) else value
    return options


def check_n(body: JSONObject, drop: bool) -> None:
    n = body.get("n")
    if n not in (None, 1) and not drop:
        raise invalid_request("Ollama returns one choice per request; 'n' must be 1", param="n")


def response_format(body: JSONObject) -> JSONValue:
    """``response_format`` -> Ollama's ``format`` ("json" or a JSON schema), or None."""
    if body.get("format") is not None:
        return body["format"]
    fmt = body.get("response_format")
    if not fmt:
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise invalid_request(
                "response_format.json_schema.schema must be a JSON schema object", param="response_format"
            )
        return schema
    if kind == "text":
        return None
    raise invalid_request(f"unknown response_format type {kind!r}", param="response_format")


def finish_reason(done_reason: JSONValue, has_tool_calls: bool = False) -> str:
    if has_tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def base_request(body: JSONObject, model: str, stream: bool) -> JSONObject:
    """What every Ollama request carries: model, stream, options, format and keep_alive."""
    req: JSONObject = {"model": model, "stream": stream}
    options = build_options(body)
    if options:
        req["options"] = options
    fmt = response_format(body)
    if fmt is not None:
        req["format"] = fmt
    if body.get("keep_alive") is not None:
        req["keep_alive"] = body["keep_alive"]
    return req
