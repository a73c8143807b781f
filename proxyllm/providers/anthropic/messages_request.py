"""Anthropic Messages request -> OpenAI chat request, for ``/v1/messages`` on any model (pure).

``strict`` decides what happens to content the OpenAI form cannot carry (PDF documents, ...): refused
with a 400 when the model may be served by a non-Anthropic upstream, skipped when every deployment is
Anthropic (the Anthropic provider then sends the client's own request). What another upstream cannot
honour but the conversation does not depend on is always left out, never refused: server tool
definitions (``web_search`` ...) and their result blocks, earlier thinking blocks, ``cache_control``,
``context_management``, ``input_examples``. A ``system`` turn in ``messages`` becomes a system
message at that place; ``thinking`` and ``output_config.effort`` become ``reasoning_effort`` (which
each provider maps to its own: Ollama ``think``, Gemini's thinking budget, Anthropic's thinking).
"""

from __future__ import annotations

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.providers.anthropic.common import dumps, image_url
from proxyllm.providers.anthropic.messages_checks import check_request

EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
# Blocks of the upstream's own server tools (web search, code execution, MCP, ...) in earlier turns:
# what they found is in the text the model wrote after them, so they are left out for other upstreams.
# ``tool_reference`` (tool search results) names tools that other upstreams get with the rest anyway.
SERVER_BLOCKS = frozenset({"server_tool_use", "mcp_tool_use", "mcp_tool_result", "container_upload", "tool_reference"})
__all__ = ["check_request", "estimate_input_tokens", "openai_request"]


def _dropped(kind: JSONValue) -> bool:
    """Blocks no other upstream can take and that are left out rather than refused."""
    return kind in SERVER_BLOCKS or (isinstance(kind, str) and kind.endswith("_tool_result") and kind != "tool_result")


def _unsupported(kind: JSONValue, where: str, strict: bool) -> None:
    if strict:
        raise invalid_request(
            f"content blocks of type {kind!r} need an Anthropic model; this model cannot take them", param=where
        )


def _text(content: JSONValue) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _image_part(block: JSONObject, where: str) -> JSONObject:
    return {"type": "image_url", "image_url": {"url": image_url(block.get("source"), f"{where}.source")}}


def _tool_result(block: JSONObject, where: str, strict: bool) -> tuple[JSONObject, list[JSONObject]]:
    """A tool_result -> an OpenAI tool message, plus any images it held (they go to a user message)."""
    content = block.get("content")
    texts: list[str] = []
    images: list[JSONObject] = []
    for j, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image":
            images.append(_image_part(part, f"{where}.content[{j}]"))
        elif not _dropped(kind):
            _unsupported(kind, f"{where}.content[{j}]", strict)
    text = content if isinstance(content, str) else "".join(texts)
    if block.get("is_error") and text:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}, images


def _user_messages(content: JSONValue, where: str, strict: bool) -> list[JSONObject]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[JSONObject] = []
    parts: list[JSONObject] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "tool_result":
            message, images = _tool_result(block, at, strict)
            tool_messages.append(message)
            parts.extend(images)
        elif kind == "document" and isinstance(block.get("source"), dict) and block["source"].get("type") == "text":
            parts.append({"type": "text", "text": str(block["source"].get("data", ""))})
        elif not _dropped(kind):
            _unsupported(kind, at, strict)
    out = tool_messages  # tool results must directly follow the assistant's tool calls
    if parts:
        plain = all(p["type"] == "text" for p in parts)
        out.append({"role": "user", "content": "".join(p["text"] for p in parts) if plain else parts})
    return out


def _assistant_message(content: JSONValue, where: str, strict: bool) -> JSONObject | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSONObject] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": str(block.get("id") or ""),
                    "type": "function",
                    "function": {"name": str(block.get("name") or ""), "arguments": dumps(block.get("input") or {})},
                }
            )
        elif kind not in ("thinking", "redacted_thinking") and not _dropped(kind):  # earlier reasoning is not sent back
            _unsupported(kind, f"{where}.content[{j}]", strict)
    if not texts and not calls:
        return None
    message: JSONObject = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: list[JSONValue]) -> list[JSONObject]:
    out = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict) or not tool.get("name"):
            raise invalid_request("every tool needs a name", param=f"tools[{k}]")
        if tool.get("type") not in (None, "custom"):
            continue  # server tools (web search, bash, ...) run at Anthropic only: left out for other upstreams
        fn: JSONObject = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
        if tool.get("description"):
            fn["description"] = tool["description"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: JSONObject) -> JSONValue:
    kind = choice.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise invalid_request("tool_choice.type must be auto, any, tool (with a name) or none", param="tool_choice")


def _reasoning_effort(thinking: JSONValue, output_config: JSONObject) -> str | None:
    """``output_config.effort`` or the thinking settings -> OpenAI ``reasoning_effort``."""
    effort = output_config.get("effort")
    if isinstance(effort, str) and effort in EFFORTS:
        return EFFORTS[effort]
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("adaptive", "between_tools"):
        return "medium"
    if kind != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget <= 2048:
        return "low"
    return "medium" if budget <= 8192 else "high"


def _response_format(output_config: JSONObject) -> JSONObject | None:
    fmt = output_config.get("format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise invalid_request("output_config.format must be {type: json_schema, schema}", param="output_config.format")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


def openai_request(body: JSONObject, *, strict: bool = True) -> JSONObject:
    """A checked Anthropic Messages request -> an OpenAI chat completions request."""
    messages: list[JSONObject] = []
    system = _text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for i, msg in enumerate(body["messages"]):
        where = f"messages[{i}]"
        if msg["role"] == "system":  # a mid-conversation system turn, kept in its place
            text = _text(msg["content"])
            if text:
                messages.append({"role": "system", "content": text})
        elif msg["role"] == "user":
            messages.extend(_user_messages(msg["content"], where, strict))
        else:
            assistant = _assistant_message(msg["content"], where, strict)
            if assistant is not None:
                messages.append(assistant)
    req: JSONObject = {"model": body["model"], "messages": messages}
    if body.get("max_tokens") is not None:
        req["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            req[key] = body[key]
    if body.get("stop_sequences"):
        req["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        req["user"] = user
    tools = _tools(body.get("tools") or [])
    if tools:
        req["tools"] = tools
        choice = body.get("tool_choice")
        if choice:
            req["tool_choice"] = _tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                req["parallel_tool_calls"] = False
    output_config = body.get("output_config") or {}
    effort = _reasoning_effort(body.get("thinking"), output_config)
    if effort:
        req["reasoning_effort"] = effort
    response_format = _response_format(output_config)
    if response_format:
        req["response_format"] = response_format
    if body.get("stream"):
        req["stream"] = True
        req["stream_options"] = {"include_usage": True}
    return req


def _block_chars(block: JSONValue) -> tuple[int, int]:
    """(characters, images) in one content block."""
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "image":
        return 0, 1
    if kind == "text":
        return len(str(block.get("text", ""))), 0
    if kind == "tool_use":
        return len(dumps(block.get("input") or {})) + len(str(block.get("name", ""))), 0
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            sizes = [_block_chars(b) for b in content]
            return sum(c for c, _ in sizes), sum(n for _, n in sizes)
        return len(str(content or "")), 0
    if kind == "thinking":
        return len(str(block.get("thinking", ""))), 0
    return len(dumps(block)), 0


def estimate_input_tokens(body: JSONObject) -> int:
    """A rough count (about four characters a token, a flat 1,600 per image) for non-Anthropic models."""
    chars = len(_text(body.get("system")))
    images = 0
    for msg in body["messages"]:
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            size, count = _block_chars(block)
            chars += size
            images += count
        chars += 12  # role and turn markers
    if body.get("tools"):
        chars += len(dumps(body["tools"]))
    return max(1, (chars + 3) // 4 + images * 1600)
