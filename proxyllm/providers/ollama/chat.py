"""Pure translation between OpenAI chat completions and Ollama's ``/api/chat``."""

from __future__ import annotations

import secrets

import orjson

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.types import ComputeTime, Usage
from proxyllm.providers.ollama.forced import ForcedTool, forced_tool, with_hint
from proxyllm.providers.ollama.options import COMMON, base_request, check_n, finish_reason
from proxyllm.providers.params import drop_unsupported
from proxyllm.providers.sse import ChunkEncoder

SUPPORTED = COMMON | {"messages", "tools", "tool_choice", "response_format", "think", "reasoning_effort"}


def new_tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def split_content(content: JSONValue, where: str) -> tuple[str, list[str]]:
    """OpenAI message content (a string or parts) -> (text, base64 images)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise invalid_request(f"{where}.content must be a string or a list of parts", param=where)
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
                raise invalid_request(
                    "Ollama takes images inline: use a base64 data URL (data:image/png;base64,...)",
                    param=f"{where}.content[{j}].image_url",
                )
            images.append(url.split(",", 1)[1])
        else:
            raise invalid_request(f"unsupported content part type {kind!r}", param=f"{where}.content[{j}]")
    return "".join(texts), images


def _tool_arguments(raw: JSONValue, where: str) -> JSONValue:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_request("tool call arguments must be a JSON object", param=where) from None


def to_ollama_messages(messages: list[JSONObject]) -> list[JSONObject]:
    out: list[JSONObject] = []
    tool_names: dict[str, str] = {}
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise invalid_request("each message must be an object with a 'role'", param=where)
        role = msg["role"]
        text, images = split_content(msg.get("content"), where)
        item: JSONObject = {"role": "system" if role == "developer" else role, "content": text}
        if images:
            item["images"] = images
        calls = msg.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise invalid_request("tool_calls must be a list of tool calls", param=f"{where}.tool_calls")
            item["tool_calls"] = []
            for k, call in enumerate(calls):
                fn = call.get("function") if isinstance(call, dict) else None
                fn = {} if fn is None and isinstance(call, dict) else fn
                if not isinstance(fn, dict) or not isinstance(fn.get("name", ""), str):
                    raise invalid_request(
                        "each tool call must be an object with a 'function' {name, arguments}",
                        param=f"{where}.tool_calls[{k}]",
                    )
                if isinstance(call, dict) and isinstance(call.get("id"), str) and call["id"]:
                    tool_names[call["id"]] = fn.get("name", "")
                item["tool_calls"].append(
                    {
                        "function": {
                            "name": fn.get("name", ""),
                            "arguments": _tool_arguments(fn.get("arguments"), f"{where}.tool_calls[{k}]"),
                        }
                    }
                )
        if role == "tool":
            call_id = msg.get("tool_call_id")
            name = (tool_names.get(call_id) if isinstance(call_id, str) else None) or msg.get("name")
            if name:
                item["tool_name"] = name
        out.append(item)
    return out


def _tools(body: JSONObject) -> list[JSONObject] | None:
    """The tools to send when the model may choose (a forced choice is emulated: ``forced.py``)."""
    tools = body.get("tools")
    if body.get("tool_choice") == "none":
        return None
    if not tools:
        return None
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function" or "function" not in tool:
            raise invalid_request("only function tools are supported", param=f"tools[{k}]")
    return list(tools)


def _think(body: JSONObject) -> JSONValue:
    if body.get("think") is not None:
        return body["think"]
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    return effort not in ("none", "minimal")


def chat_request(body: JSONObject, model: str, *, drop: bool, stream: bool) -> JSONObject:
    """OpenAI chat request -> Ollama /api/chat request."""
    body = drop_unsupported(body, SUPPORTED, drop=drop, provider="Ollama")
    check_n(body, drop)
    req = base_request(body, model, stream)
    req["messages"] = to_ollama_messages(body["messages"])
    forced = forced_tool(body)
    if forced is not None:
        req["format"] = forced.schema
        req["messages"] = with_hint(req["messages"], forced.hint)
    else:
        tools = _tools(body)
        if tools:
            req["tools"] = tools
    think = _think(body)
    if think is not None:
        req["think"] = think
    return req


def _nanoseconds(data: JSONObject, name: str) -> int:
    value = data.get(name)
    return value if type(value) is int and 0 <= value < 10**15 else 0  # under about 11 days


def compute_of(data: JSONObject) -> ComputeTime | None:
    """Ollama's durations (nanoseconds) from a final answer or the last stream chunk, when it sent any."""
    found = ComputeTime(
        load_ns=_nanoseconds(data, "load_duration"),
        prompt_eval_ns=_nanoseconds(data, "prompt_eval_duration"),
        eval_ns=_nanoseconds(data, "eval_duration"),
        total_ns=_nanoseconds(data, "total_duration"),
    )
    return found if found != ComputeTime() else None


def usage_of(data: JSONObject) -> Usage:
    return Usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0), compute=compute_of(data))


def openai_tool_calls(calls: list[JSONObject], start: int = 0) -> list[JSONObject]:
    out = []
    for k, call in enumerate(calls):
        fn = call.get("function") or {}
        args = fn.get("arguments")
        out.append(
            {
                "index": start + k,
                "id": new_tool_call_id(),
                "type": "function",
                "function": {
                    "name": fn.get("name", ""),
                    "arguments": args if isinstance(args, str) else orjson.dumps(args or {}).decode(),
                },
            }
        )
    return out


def chat_response(
    data: JSONObject, *, model: str, response_id: str, created: int, forced: ForcedTool | None = None
) -> JSONObject:
    """Ollama /api/chat response (stream false) -> OpenAI chat.completion."""
    msg = data.get("message") or {}
    if forced is not None:
        calls = forced.tool_calls(msg.get("content") or "")
        msg = {**msg, "content": None}
    else:
        calls = openai_tool_calls(msg.get("tool_calls") or [])
        for call in calls:
            del call["index"]
    message: JSONObject = {"role": "assistant", "content": msg.get("content") or (None if calls else "")}
    if msg.get("thinking"):
        message["reasoning_content"] = msg["thinking"]
    if calls:
        message["tool_calls"] = calls
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(data.get("done_reason"), bool(calls)),
                "logprobs": None,
            }
        ],
        "usage": usage_of(data).as_openai(),
    }


class ChatStreamTranslator:
    """Ollama /api/chat NDJSON lines -> OpenAI chat.completion.chunk SSE events."""

    def __init__(self, encoder: ChunkEncoder, forced: ForcedTool | None = None) -> None:
        self.encoder = encoder
        self.started = False
        self.tool_calls = 0
        self.usage: Usage | None = None
        self.forced = forced  # a forced tool call: the content is its arguments, sent at the end
        self.held: list[str] = []

    def _delta(self, delta: JSONObject, finish: str | None = None) -> bytes:
        if not self.started:
            self.started = True
            delta = {"role": "assistant", **delta}
        return self.encoder.choice({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None})

    def feed(self, data: JSONObject) -> list[bytes]:
        out: list[bytes] = []
        msg = data.get("message") or {}
        if msg.get("thinking"):
            out.append(self._delta({"reasoning_content": msg["thinking"]}))
        if msg.get("content"):
            if self.forced is None:
                out.append(self._delta({"content": msg["content"]}))
            else:
                self.held.append(msg["content"])
        calls = msg.get("tool_calls")
        if self.forced is not None and data.get("done"):
            calls = None
            forced_calls = self.forced.tool_calls("".join(self.held))
            for k, call in enumerate(forced_calls):
                call["index"] = k
            out.append(self._delta({"tool_calls": forced_calls}))
            self.tool_calls += len(forced_calls)
        if calls:
            out.append(self._delta({"tool_calls": openai_tool_calls(calls, self.tool_calls)}))
            self.tool_calls += len(calls)
        if data.get("done"):
            self.usage = usage_of(data)
            out.append(self._delta({}, finish_reason(data.get("done_reason"), self.tool_calls > 0)))
        return out
