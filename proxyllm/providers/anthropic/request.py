"""OpenAI chat request -> Anthropic Messages request (pure)."""

from __future__ import annotations

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.providers.anthropic.common import (
    DEFAULT_MAX_TOKENS,
    JSON_TOOL,
    THINKING_BUDGETS,
    image_source,
    parse_arguments,
)
from proxyllm.providers.params import drop_unsupported

SUPPORTED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "n",
        "reasoning_effort",
        "thinking",
        "response_format",
    }
)


def _text_block(text: str, part: JSONObject | None = None) -> JSONObject:
    block: JSONObject = {"type": "text", "text": text}
    if part is not None and part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def content_blocks(content: JSONValue, where: str) -> list[JSONObject]:
    """OpenAI message content (a string or parts) -> Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    if not isinstance(content, list):
        raise invalid_request(f"{where}.content must be a string or a list of parts", param=f"{where}.content")
    blocks: list[JSONObject] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append(_text_block(str(part.get("text", "")), part))
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            block: JSONObject = {"type": "image", "source": image_source(url, f"{at}.image_url")}
            if part.get("cache_control"):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        else:
            raise invalid_request(f"Anthropic does not take content parts of type {kind!r}", param=at)
    return blocks


def _message_cache_control(blocks: list[JSONObject], msg: JSONObject) -> None:
    """A message-level ``cache_control`` (LiteLLM's convention) marks the message's last block."""
    if msg.get("cache_control") and blocks:
        blocks[-1]["cache_control"] = msg["cache_control"]


def _assistant_blocks(msg: JSONObject, where: str) -> list[JSONObject]:
    blocks: list[JSONObject] = []
    for block in msg.get("thinking_blocks") or []:
        if isinstance(block, dict) and block.get("type") in ("thinking", "redacted_thinking"):
            blocks.append(dict(block))
    blocks.extend(content_blocks(msg.get("content"), where))
    for k, call in enumerate(msg.get("tool_calls") or []):
        if not isinstance(call, dict):
            raise invalid_request("tool calls must be objects", param=f"{where}.tool_calls[{k}]")
        fn = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{k}",
                "name": fn.get("name", ""),
                "input": parse_arguments(fn.get("arguments"), f"{where}.tool_calls[{k}].function.arguments"),
            }
        )
    return blocks


def _tool_result(msg: JSONObject, where: str) -> JSONObject:
    content = msg.get("content")
    result: JSONObject = {"type": "tool_result", "tool_use_id": msg.get("tool_call_id") or ""}
    if not result["tool_use_id"]:
        raise invalid_request(f"{where}.tool_call_id is required", param=f"{where}.tool_call_id")
    if isinstance(content, list):
        result["content"] = content_blocks(content, where)
    else:
        result["content"] = "" if content is None else str(content)
    return result


def to_anthropic_messages(messages: list[JSONObject]) -> tuple[list[JSONObject], list[JSONObject]]:
    """OpenAI messages -> (Anthropic system blocks, Anthropic messages). Same-role turns are merged."""
    system: list[JSONObject] = []
    out: list[JSONObject] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        role = msg["role"]
        if role in ("system", "developer"):
            blocks = content_blocks(msg.get("content"), where)
            _message_cache_control(blocks, msg)
            system.extend(blocks)
            continue
        if role == "assistant":
            blocks = _assistant_blocks(msg, where)
            turn = "assistant"
        elif role == "tool":
            blocks = [_tool_result(msg, where)]
            turn = "user"
        elif role == "user":
            blocks = content_blocks(msg.get("content"), where)
            turn = "user"
        else:
            raise invalid_request(f"Anthropic does not take messages with role {role!r}", param=f"{where}.role")
        if not blocks:
            continue  # Anthropic refuses empty turns
        _message_cache_control(blocks, msg)
        if out and out[-1]["role"] == turn:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": turn, "content": blocks})
    return system, out


def _tools(body: JSONObject) -> list[JSONObject]:
    tools = []
    for k, tool in enumerate(body.get("tools") or []):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type") != "function" or not fn.get("name"):
            raise invalid_request("only function tools with a name are supported", param=f"tools[{k}]")
        spec: JSONObject = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        if tool.get("cache_control"):
            spec["cache_control"] = tool["cache_control"]
        tools.append(spec)
    return tools


def _tool_choice(choice: JSONValue, parallel: JSONValue) -> JSONObject | None:
    if choice is None or choice == "auto":
        out: JSONObject = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise invalid_request("tool_choice must be auto, none, required or a named function", param="tool_choice")
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None
    return out


def _output_format(fmt: JSONValue) -> JSONObject | None:
    """``response_format`` json_schema -> Anthropic structured outputs (``output_config.format``)."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = (fmt.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise invalid_request("response_format.json_schema.schema must be a JSON schema", param="response_format")
    return {"type": "json_schema", "schema": schema}


def _json_tool(fmt: JSONValue) -> JSONObject | None:
    """``response_format`` json_object (no schema) -> a tool the model must call; its input is the answer."""
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text", "json_schema"):
        return None
    if fmt["type"] != "json_object":
        raise invalid_request(f"unknown response_format type {fmt['type']!r}", param="response_format")
    schema = {"type": "object"}
    return {"name": JSON_TOOL, "description": "Respond with a JSON object.", "input_schema": schema}


def _stop(stop: JSONValue) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    return [s for s in stops if isinstance(s, str) and s.strip()]  # whitespace-only stops are refused


def messages_request(
    body: JSONObject, model: str, *, drop: bool, stream: bool, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> JSONObject:
    """OpenAI chat request -> Anthropic Messages request."""
    body = drop_unsupported(body, SUPPORTED, drop=drop, provider="Anthropic")
    if body.get("n") not in (None, 1) and not drop:
        raise invalid_request("Anthropic returns one choice per request; 'n' must be 1", param="n")
    system, messages = to_anthropic_messages(body["messages"])
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    req: JSONObject = {"model": model, "messages": messages, "max_tokens": max_tokens}
    if system:
        req["system"] = system
    if stream:
        req["stream"] = True
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            req[key] = body[key]
    stops = _stop(body.get("stop"))
    if stops:
        req["stop_sequences"] = stops
    if body.get("user"):
        req["metadata"] = {"user_id": body["user"]}
    tools = _tools(body)
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        req["output_config"] = {"format": output_format}
    json_tool = _json_tool(body.get("response_format"))
    if json_tool is not None:
        if tools:
            raise invalid_request(
                "response_format json_object cannot be combined with tools for Anthropic models; use json_schema",
                param="response_format",
            )
        req["tools"] = [json_tool]
        req["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    elif tools:
        req["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            req["tool_choice"] = choice
    thinking = body.get("thinking")
    effort = body.get("reasoning_effort")
    if thinking is None and effort in THINKING_BUDGETS:
        thinking = {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and req["max_tokens"] <= budget:
            req["max_tokens"] = budget + default_max_tokens  # the answer needs room beyond the thinking
    if thinking is not None:
        req["thinking"] = thinking
    return req


def is_json_mode(body: JSONObject) -> bool:
    """True when the answer comes back as the forced JSON tool's input."""
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_object"
