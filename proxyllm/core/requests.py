"""Parse and check an OpenAI request body cheaply: orjson plus a type table, no model objects.

Wrong types are a 400 naming the field. Proxy-only fields (fallbacks, timeout, drop_params, ...)
are taken out of the body here so providers never forward them.
"""

from __future__ import annotations

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONArray, JSONObject, JSONValue
from proxyllm.core.mock import MAX_MOCK_CHARS
from proxyllm.core.types import Operation

NUM = (int, float)
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}

_SAMPLING: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "stream": (bool,),
    "stream_options": (dict,),
    "temperature": NUM,
    "top_p": NUM,
    "n": (int,),
    "max_tokens": (int,),
    "stop": (str, list),
    "seed": (int,),
    "presence_penalty": NUM,
    "frequency_penalty": NUM,
    "logit_bias": (dict,),
    "user": (str,),
}
FIELD_TYPES: dict[Operation, dict[str, tuple[type, ...]]] = {
    Operation.CHAT: {
        **_SAMPLING,
        "messages": (list,),
        "max_completion_tokens": (int,),
        "tools": (list,),
        "tool_choice": (str, dict),
        "parallel_tool_calls": (bool,),
        "response_format": (dict,),
        "logprobs": (bool,),
        "top_logprobs": (int,),
        "reasoning_effort": (str,),
    },
    Operation.COMPLETION: {
        **_SAMPLING,
        "prompt": (str, list),
        "suffix": (str,),
        "echo": (bool,),
        "best_of": (int,),
        "logprobs": (int,),
    },
    Operation.EMBEDDING: {
        "model": (str,),
        "input": (str, list),
        "encoding_format": (str,),
        "dimensions": (int,),
        "user": (str,),
    },
}
REQUIRED = {
    Operation.CHAT: ("model", "messages"),
    Operation.COMPLETION: ("model", "prompt"),
    Operation.EMBEDDING: ("model", "input"),
}
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PROXY_FIELDS = frozenset(
    {
        "fallbacks",
        "timeout",
        "drop_params",
        "num_retries",
        "mock_response",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "max_fallbacks",
        "litellm_metadata",
        "metadata",
        "tags",
        "cache",
        "fastest_response",
    }
)


def _describe(types: tuple[type, ...]) -> str:
    if types == NUM:
        return "a number"
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def load_json(raw: bytes) -> JSONValue:
    """A request body as JSON, or a 400 saying why it is not (every client API parses with this)."""
    if not raw:
        raise invalid_request("the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"the request body is not valid JSON: {exc}") from None


def parse_body(raw: bytes, operation: Operation) -> JSONObject:
    body = load_json(raw)
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    for name in REQUIRED[operation]:
        if body.get(name) is None:
            raise invalid_request(f"missing required field '{name}'", param=name)
    types = FIELD_TYPES[operation]
    for key, value in body.items():
        expected = types.get(key)
        # exact type match: True is not an integer here, 1 is a valid float
        if expected is not None and value is not None and type(value) not in expected:
            raise invalid_request(f"'{key}' must be {_describe(expected)}", param=key)
    for name in STORED_STRINGS:
        value = body.get(name)
        if value is not None:
            bounded_string(value, name)
    if operation is Operation.CHAT:
        _check_messages(body["messages"])
    elif operation is Operation.EMBEDDING and not body["input"]:
        raise invalid_request("'input' must not be empty", param="input")
    return body


MAX_STORED = 255  # the width of the columns these values are stored in (spend logs, billing accounts)
STORED_STRINGS = ("model", "user")  # client strings that are stored with the request's spend


def bounded_string(value: str, name: str, limit: int = MAX_STORED) -> str:
    """A client string that will be stored: at most ``limit`` characters and no NUL byte, else 400."""
    if len(value) > limit:
        raise invalid_request(f"'{name}' is {len(value)} characters long; at most {limit} are allowed", param=name)
    if "\x00" in value:
        raise invalid_request(f"'{name}' must not contain NUL characters", param=name)
    return value


def _check_messages(messages: JSONArray) -> None:
    if not messages:
        raise invalid_request("'messages' must contain at least one message", param="messages")
    for i, msg in enumerate(messages):
        if type(msg) is not dict:
            raise invalid_request(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = msg.get("role")
        if type(role) is not str or role not in ROLES:
            raise invalid_request(
                f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}", param=f"messages[{i}].role"
            )


def apply_proxy_fields(ctx: RequestContext) -> None:
    """Move proxy-only fields out of the body and onto the context."""
    body = ctx.body
    if not PROXY_FIELDS.isdisjoint(body):
        opts = {k: body.pop(k) for k in PROXY_FIELDS & body.keys()}
        ctx.options = opts
        fallbacks = opts.get("fallbacks")
        if fallbacks is not None:
            ctx.request_fallbacks, ctx.fallback_overrides = request_fallbacks(fallbacks, ctx.operation)
        timeout = opts.get("timeout")
        if timeout is not None:
            ctx.timeout = _positive(timeout, "timeout")
        ctx.tags = request_tags(opts)
        mock = opts.get("mock_response")
        if mock is not None:
            if not isinstance(mock, str) or len(mock) > MAX_MOCK_CHARS:
                raise invalid_request(
                    f"'mock_response' must be a string of at most {MAX_MOCK_CHARS} characters", param="mock_response"
                )
            ctx.mock_response = mock
        if opts.get("drop_params") is True:
            ctx.drop_params = True
    if ctx.stream and ctx.operation is Operation.EMBEDDING:
        raise invalid_request("embeddings cannot be streamed", param="stream")


MAX_FALLBACKS = 16
# What a fallback object may change for its own attempt (LiteLLM's ``fallbacks=[{"model": ..., ...}]``).
FALLBACK_OVERRIDES = frozenset(
    {"messages", "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "prompt", "input"}
)


def request_fallbacks(value: JSONValue, operation: Operation) -> tuple[list[str], dict[str, JSONObject]]:
    """The request's ``fallbacks``: model names, or LiteLLM's objects ``{"model": name, <overrides>}``
    whose other fields replace the request's for that model's attempt (messages, sampling)."""
    if not isinstance(value, list) or len(value) > MAX_FALLBACKS:
        raise invalid_request(
            f"'fallbacks' must be a list of at most {MAX_FALLBACKS} model names or objects", param="fallbacks"
        )
    names: list[str] = []
    overrides: dict[str, JSONObject] = {}
    types = FIELD_TYPES[operation]
    for i, item in enumerate(value):
        if isinstance(item, str):
            names.append(bounded_string(item, f"fallbacks[{i}]"))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("model"), str):
            raise invalid_request(f"fallbacks[{i}] must be a model name or an object with 'model'", param="fallbacks")
        name = bounded_string(item["model"], f"fallbacks[{i}].model")
        extra = {k: v for k, v in item.items() if k != "model"}
        for key, field in extra.items():
            expected = types.get(key)
            if key not in FALLBACK_OVERRIDES or expected is None:
                allowed = ", ".join(sorted(FALLBACK_OVERRIDES))
                raise invalid_request(
                    f"fallbacks[{i}].{key} cannot be set per fallback (allowed: {allowed})", param="fallbacks"
                )
            if field is not None and type(field) not in expected:
                raise invalid_request(f"fallbacks[{i}].{key} must be {_describe(expected)}", param="fallbacks")
        if operation is Operation.CHAT and "messages" in extra:
            _check_messages(extra["messages"])
        names.append(name)
        if extra:
            overrides[name] = extra
    return names, overrides


MAX_TAGS = 32


def request_tags(opts: JSONObject) -> frozenset[str]:
    """``metadata.tags`` (LiteLLM's place) or ``tags``: a list of short strings."""
    metadata = opts.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    if tags is None:
        tags = opts.get("tags")
    if tags is None:
        return frozenset()
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise invalid_request(f"'metadata.tags' must be a list of at most {MAX_TAGS} strings", param="metadata.tags")
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise invalid_request("'metadata.tags' must be a list of strings", param="metadata.tags")
        bounded_string(tag, f"metadata.tags[{i}]")
    return frozenset(tags)


def header_tags(value: str) -> frozenset[str]:
    """The ``x-litellm-tags`` header: comma-separated tags, the same as ``metadata.tags``."""
    tags = [t.strip() for t in value.split(",") if t.strip()]
    if len(tags) > MAX_TAGS:
        raise invalid_request(f"x-litellm-tags has more than {MAX_TAGS} tags", param="x-litellm-tags")
    for tag in tags:
        bounded_string(tag, "x-litellm-tags")
    return frozenset(tags)


MAX_TIMEOUT = 86_400.0


def _positive(value: JSONValue, name: str) -> float:
    if type(value) not in NUM or not 0 < value <= MAX_TIMEOUT:
        raise invalid_request(f"'{name}' must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}", param=name)
    return float(value)


def timeout_header(value: str) -> float:
    """``x-litellm-timeout``: a finite number of seconds (``nan``, ``inf`` and ``1e309`` are refused)."""
    try:
        seconds = float(value)
    except ValueError:
        raise invalid_request("x-litellm-timeout must be a number of seconds", param="x-litellm-timeout") from None
    if not 0 < seconds <= MAX_TIMEOUT:  # also false for nan
        raise invalid_request(
            f"x-litellm-timeout must be above 0 and at most {MAX_TIMEOUT:g} seconds", param="x-litellm-timeout"
        )
    return seconds
