"""Ollama requests checked, and translated to the gateway's OpenAI body.

Every field a client sends is checked for its type (a 400 in Ollama's shape names it). The OpenAI
body carries what any upstream can honour: messages (images as data URLs, tool calls with ids),
tools, ``format`` as ``response_format``, the sampling options that have an OpenAI name, ``think``
levels as ``reasoning_effort``. Ollama-only fields (``keep_alive``, ``num_ctx``, ``suffix``, ...)
reach Ollama upstreams, which get the client's own request; other upstreams never see them.
"""

from __future__ import annotations

import math

import orjson

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.requests import PROXY_FIELDS, bounded_string, load_json

ROLES = frozenset({"system", "user", "assistant", "tool"})
THINK_LEVELS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}
# Ollama option -> OpenAI field, and the JSON types it may have.
OPTION_FIELDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "temperature": ("temperature", (int, float)),
    "top_p": ("top_p", (int, float)),
    "seed": ("seed", (int,)),
    "presence_penalty": ("presence_penalty", (int, float)),
    "frequency_penalty": ("frequency_penalty", (int, float)),
    "num_predict": ("max_tokens", (int,)),
    "stop": ("stop", (list, str)),
}
MAX_STOP = 16
IMAGE_TYPES = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


def load_object(raw: bytes) -> JSONObject:
    body = load_json(raw)
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    return body


def split_proxy_fields(body: JSONObject) -> JSONObject:
    """The proxy's own fields (fallbacks, metadata, cache, ...), taken out of the client's request."""
    return {k: body.pop(k) for k in PROXY_FIELDS & body.keys()}


def model_of(body: JSONObject) -> str:
    model = body.get("model")
    if model is None:
        model = body.get("name")  # older clients send "name"
        if model is not None:
            body["model"] = body.pop("name")
    if not isinstance(model, str) or not model:
        raise invalid_request("missing required field 'model'", param="model")
    return bounded_string(model, "model")


def _check(body: JSONObject, name: str, types: tuple[type, ...], what: str) -> JSONValue:
    value = body.get(name)
    if value is not None and (type(value) not in types):
        raise invalid_request(f"'{name}' must be {what}", param=name)
    return value


def _finite(value: JSONValue, name: str) -> JSONValue:
    if type(value) is float and not math.isfinite(value):
        raise invalid_request(f"'{name}' must be a finite number", param=name)
    return value


def sampling(body: JSONObject) -> JSONObject:
    """``options`` checked; the ones with an OpenAI name, under that name."""
    options = _check(body, "options", (dict,), "an object")
    common: JSONObject = {}
    if not options:
        return common
    for key, value in options.items():
        if value is None:
            continue
        label = f"options.{key}"
        mapped = OPTION_FIELDS.get(key)
        if mapped is None:
            if type(value) is float:
                _finite(value, label)
            elif type(value) not in (int, bool, str, list):
                raise invalid_request(f"'{label}' must be a number, string, boolean or list", param=label)
            continue
        target, types = mapped
        if type(value) not in types:
            raise invalid_request(f"'{label}' has the wrong type", param=label)
        _finite(value, label)
        if key == "num_predict":
            if value in (-1, -2):  # Ollama's "no limit" and "fill the context"
                continue
            if value < 1:
                raise invalid_request(f"'{label}' must be at least 1 (or -1 for no limit)", param=label)
        if key == "stop":
            stops = [value] if isinstance(value, str) else value
            if len(stops) > MAX_STOP or not all(isinstance(s, str) for s in stops):
                raise invalid_request(f"'{label}' must be a list of at most {MAX_STOP} strings", param=label)
            value = stops
        common[target] = value
    return common


def response_format(body: JSONObject) -> JSONObject | None:
    fmt = body.get("format")
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt}}
    raise invalid_request("'format' must be \"json\" or a JSON schema object", param="format")


def think(body: JSONObject, out: JSONObject) -> None:
    value = body.get("think")
    if value is None or isinstance(value, bool):
        return
    if not isinstance(value, str) or value not in THINK_LEVELS:
        raise invalid_request("'think' must be true, false, or one of low, medium, high, max", param="think")
    out["reasoning_effort"] = THINK_LEVELS[value]


def common_fields(body: JSONObject, out: JSONObject) -> None:
    """What chat and generate share: stream, options, format, think, keep_alive."""
    stream = _check(body, "stream", (bool,), "true or false")
    out["stream"] = stream is not False  # Ollama streams unless told not to
    out.update(sampling(body))
    fmt = response_format(body)
    if fmt is not None:
        out["response_format"] = fmt
    think(body, out)
    keep_alive = body.get("keep_alive")
    if keep_alive is not None:
        if type(keep_alive) not in (str, int, float) or (type(keep_alive) is str and len(keep_alive) > 32):
            raise invalid_request("'keep_alive' must be a duration such as \"5m\" or a number of seconds")
        _finite(keep_alive, "keep_alive")


def image_url(image: JSONValue, where: str) -> JSONObject:
    if not isinstance(image, str) or not image or "\x00" in image:
        raise invalid_request(f"{where} must be a base64-encoded image", param=where)
    mime = next((m for prefix, m in IMAGE_TYPES if image.startswith(prefix)), "image/png")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{image}"}}


def _images(value: JSONValue, where: str) -> list[JSONObject]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_request(f"{where}.images must be a list of base64 images", param=f"{where}.images")
    return [image_url(image, f"{where}.images[{k}]") for k, image in enumerate(value)]


def _content(text: str, images: list[JSONObject]) -> JSONValue:
    return [{"type": "text", "text": text}, *images] if images else text


def _tool_calls(value: JSONValue, where: str, i: int) -> list[JSONObject]:
    if not isinstance(value, list):
        raise invalid_request(f"{where}.tool_calls must be a list", param=f"{where}.tool_calls")
    calls = []
    for k, call in enumerate(value):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise invalid_request(
                'each tool call must be {"function": {"name", "arguments"}}', param=f"{where}.tool_calls[{k}]"
            )
        arguments = fn.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise invalid_request("tool call arguments must be an object", param=f"{where}.tool_calls[{k}]")
        call_id = call.get("id") if isinstance(call.get("id"), str) and call["id"] else f"call_{i}_{k}"
        calls.append({"id": call_id, "type": "function", "function": {"name": fn["name"], "arguments": arguments}})
    return calls


def chat_messages(value: JSONValue) -> list[JSONObject]:
    """Ollama messages -> OpenAI messages; a tool result answers the latest open call of its tool."""
    if not isinstance(value, list):
        raise invalid_request("'messages' must be a list", param="messages")
    out: list[JSONObject] = []
    open_calls: list[tuple[str, str]] = []  # (id, function name) of calls not answered yet
    for i, msg in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise invalid_request(f"{where} must be an object", param=where)
        role = msg.get("role")
        if role not in ROLES:
            raise invalid_request(f"{where}.role must be one of {', '.join(sorted(ROLES))}", param=f"{where}.role")
        text = _check(msg, "content", (str,), "a string") or ""
        item: JSONObject = {"role": role, "content": _content(text, _images(msg.get("images"), where))}
        if role == "assistant" and msg.get("tool_calls"):
            calls = _tool_calls(msg["tool_calls"], where, i)
            for call in calls:
                open_calls.append((call["id"], call["function"]["name"]))
                call["function"]["arguments"] = orjson.dumps(call["function"]["arguments"]).decode()  # OpenAI's form
            item["tool_calls"] = calls
            item["content"] = item["content"] or None
        elif role == "tool":
            name = msg.get("tool_name") or msg.get("name")
            match = next((c for c in open_calls if c[1] == name), open_calls[0] if open_calls else None)
            if match is None:  # a result with no call to answer: kept as what the user reports
                item = {"role": "user", "content": f"Result of tool {name or ''}: {text}".replace("  ", " ")}
            else:
                open_calls.remove(match)
                item["tool_call_id"] = match[0]
                item["content"] = text
        out.append(item)
    return out


def tools(value: JSONValue) -> list[JSONObject] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid_request("'tools' must be a list", param="tools")
    for k, tool in enumerate(value):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise invalid_request(
                'each tool must be {"type": "function", "function": {"name", ...}}', param=f"tools[{k}]"
            )
        if fn.get("parameters") is not None and not isinstance(fn["parameters"], dict):
            raise invalid_request("a tool's parameters must be a JSON schema object", param=f"tools[{k}]")
        tool.setdefault("type", "function")
    return value or None


def chat_body(body: JSONObject) -> JSONObject:
    """``/api/chat`` -> an OpenAI chat body (``messages`` may be empty: a request that loads the model)."""
    out: JSONObject = {"model": model_of(body), "messages": chat_messages(body.get("messages") or [])}
    found = tools(body.get("tools"))
    if found:
        out["tools"] = found
    common_fields(body, out)
    return out


def generate_body(body: JSONObject) -> JSONObject:
    """``/api/generate`` -> an OpenAI chat body: the system text, then the prompt with its images."""
    model = model_of(body)
    prompt = _check(body, "prompt", (str,), "a string") or ""
    system = _check(body, "system", (str,), "a string")
    for name in ("suffix", "template"):
        _check(body, name, (str,), "a string")
    _check(body, "raw", (bool,), "true or false")
    _check(body, "context", (list,), "a list of numbers")
    messages: list[JSONObject] = []
    if system:
        messages.append({"role": "system", "content": system})
    images = _images(body.get("images"), "request")
    if prompt or images:
        messages.append({"role": "user", "content": _content(prompt, images)})
    out: JSONObject = {"model": model, "messages": messages}
    common_fields(body, out)
    return out


def embed_body(body: JSONObject, *, old: bool) -> JSONObject:
    """``/api/embed`` (``input``: a string or strings) or the old ``/api/embeddings`` (``prompt``)."""
    model = model_of(body)
    if old:
        prompt = _check(body, "prompt", (str,), "a string")
        if not prompt:
            raise invalid_request("missing required field 'prompt'", param="prompt")
        inputs: JSONValue = prompt
    else:
        inputs = body.get("input")
        if isinstance(inputs, list):
            if not inputs or not all(isinstance(x, str) for x in inputs):
                raise invalid_request("'input' must be a string or a non-empty list of strings", param="input")
        elif not isinstance(inputs, str) or not inputs:
            raise invalid_request("'input' must be a string or a non-empty list of strings", param="input")
    _check(body, "truncate", (bool,), "true or false")
    _check(body, "options", (dict,), "an object")
    out: JSONObject = {"model": model, "input": inputs}
    dimensions = _check(body, "dimensions", (int,), "an integer")
    if dimensions is not None:
        if not 1 <= dimensions <= 65_536:
            raise invalid_request("'dimensions' must be between 1 and 65536", param="dimensions")
        out["dimensions"] = dimensions
    return out


def show_model(raw: bytes) -> str:
    return model_of(load_object(raw))
