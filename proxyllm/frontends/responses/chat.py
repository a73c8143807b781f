"""A checked Responses API request as an OpenAI chat body, for upstreams that speak only chat.

Function, custom and namespaced tools become chat functions (hosted tools are left out), ``text.format``
becomes ``response_format``, and the conversation's items become chat messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue

MAX_ID = 128


SEPARATOR = "__"  # a namespaced tool's chat name: "<namespace>__<name>"
CUSTOM_PARAMETERS = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's input, as free-form text."}},
    "required": ["input"],
}


@dataclass(frozen=True, slots=True)
class ToolName:
    """What a chat function name stands for in the Responses API."""

    name: str
    namespace: str | None = None
    custom: bool = False  # a custom (free-form input) tool: called with {"input": "..."}


@dataclass(slots=True)
class ChatTools:
    tools: list[JSONObject]
    names: dict[str, ToolName]  # chat name -> Responses tool, for namespaced and custom tools
    dropped: list[str]  # hosted tools (web_search, ...) that a chat upstream cannot run


def chat_tools(tools: list[JSONValue]) -> ChatTools:
    """Function, custom and namespaced tools as chat functions; hosted tools are left out."""
    out = ChatTools([], {}, [])
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid_request(f"{where} must be an object with a type", param=where)
        kind = tool["type"]
        if kind == "namespace":
            namespace = _tool_name(tool, where)
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise invalid_request(f"{where}.tools must be a list", param=f"{where}.tools")
            for j, member in enumerate(inner):
                _add_tool(out, member, f"{where}.tools[{j}]", namespace)
        elif kind in ("function", "custom"):
            _add_tool(out, tool, where, None)
        else:
            out.dropped.append(kind[:64])
    return out


def _tool_name(tool: JSONObject, where: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_ID:
        raise invalid_request(f"{where}.name must be a string of at most {MAX_ID} characters", param=f"{where}.name")
    return name


def _add_tool(out: ChatTools, tool: JSONValue, where: str, namespace: str | None) -> None:
    if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
        raise invalid_request(f"{where} must be a function or custom tool", param=where)
    name = _tool_name(tool, where)
    chat_name = f"{namespace}{SEPARATOR}{name}" if namespace else name
    function: JSONObject = {"name": chat_name}
    description = tool.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise invalid_request(f"{where}.description must be a string", param=f"{where}.description")
        function["description"] = description
    custom = tool["type"] == "custom"
    if custom:
        function["parameters"] = CUSTOM_PARAMETERS
    else:
        parameters = tool.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise invalid_request(f"{where}.parameters must be an object", param=f"{where}.parameters")
            function["parameters"] = parameters
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
    out.tools.append({"type": "function", "function": function})
    if namespace or custom:
        out.names[chat_name] = ToolName(name, namespace, custom)


def chat_tool_choice(choice: str | JSONObject) -> str | JSONObject:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise invalid_request("'tool_choice' must be auto, none, required or a function", param="tool_choice")
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise invalid_request("'tool_choice' may name only a function tool: {type: function, name}", param="tool_choice")


def response_format(fmt: JSONValue) -> JSONObject | None:
    """``text.format`` as a chat ``response_format`` (None for plain text)."""
    if not isinstance(fmt, dict):
        raise invalid_request("'text.format' must be an object", param="text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        name, schema = fmt.get("name"), fmt.get("schema")
        if not isinstance(name, str) or not isinstance(schema, dict):
            raise invalid_request("'text.format' of type json_schema needs a name and a schema", param="text.format")
        spec: JSONObject = {"name": name, "schema": schema}
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        if isinstance(fmt.get("description"), str):
            spec["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": spec}
    raise invalid_request("'text.format.type' must be text, json_object or json_schema", param="text.format.type")


def chat_messages(instructions: str | None, items: list[JSONObject]) -> list[JSONObject]:
    messages: list[JSONObject] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item["type"]
        if kind == "message":
            role = item["role"]
            if role == "assistant":
                text = "".join(p.get("text") or p.get("refusal") or "" for p in item["content"])
                assistant = _assistant(messages)
                assistant["content"] = (assistant.get("content") or "") + text
                continue
            parts = item["content"]
            if all(p["type"] == "input_text" for p in parts):
                content: JSONValue = "".join(p["text"] for p in parts)
            else:
                content = [_chat_part(p) for p in parts]
            messages.append({"role": "system" if role == "developer" else role, "content": content})
        elif kind in ("function_call", "custom_tool_call"):
            name = item["name"]
            if item.get("namespace"):
                name = f"{item['namespace']}{SEPARATOR}{name}"
            if kind == "function_call":
                arguments = item["arguments"]
            else:
                arguments = orjson.dumps({"input": item["input"]}).decode()
            call = {"id": item["call_id"], "type": "function", "function": {"name": name, "arguments": arguments}}
            _assistant(messages).setdefault("tool_calls", []).append(call)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        # reasoning items carry nothing a chat upstream can take back
    if not messages:
        raise invalid_request("the request has no input: send 'input' with at least one item", param="input")
    return messages


def _assistant(messages: list[JSONObject]) -> JSONObject:
    """The assistant message to add to: the last one, unless a user or tool message came after it."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[-1]
    message: JSONObject = {"role": "assistant", "content": None}
    messages.append(message)
    return message


def _chat_part(part: JSONObject) -> JSONObject:
    if part["type"] == "input_image":
        return {"type": "image_url", "image_url": {"url": part["image_url"], "detail": part["detail"]}}
    return {"type": "text", "text": part.get("text") or part.get("refusal") or ""}


def chat_body(body: JSONObject, items: list[JSONObject], tools: ChatTools) -> JSONObject:
    chat: JSONObject = {"model": body["model"], "messages": chat_messages(body.get("instructions"), items)}
    if body.get("stream") is True:
        chat["stream"] = True
    for name in ("temperature", "top_p", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if tools.tools:
        chat["tools"] = tools.tools
        if body.get("parallel_tool_calls") is False:  # true is the default of both APIs: sent only when off
            chat["parallel_tool_calls"] = False
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = chat_tool_choice(body["tool_choice"])
    text = body.get("text") or {}
    if text.get("format") is not None:
        fmt = response_format(text["format"])
        if fmt is not None:
            chat["response_format"] = fmt
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None and effort != "none":
        chat["reasoning_effort"] = "low" if effort == "minimal" else "high" if effort == "xhigh" else effort
    return chat
