"""A Responses API request, checked and normalised, and the same request as an OpenAI chat body.

Every field the client controls is checked here: a wrong type or value is a 400 naming the field in
OpenAI's error shape, never a 500. ``input`` (a string or a list of items) is normalised to items
with ids, as ``GET /v1/responses/{id}/input_items`` returns them. The chat translation serves every
upstream that speaks only chat; upstreams that speak Responses get the checked request itself.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxyllm.core.errors import invalid_request

MAX_ID = 128
ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
MAX_MODEL = 256
ROLES = frozenset({"user", "system", "developer", "assistant"})
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
INCLUDABLE = frozenset(
    {
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "code_interpreter_call.outputs",
    }
)
TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "input": (str, list),
    "instructions": (str,),
    "tools": (list,),
    "tool_choice": (str, dict),
    "parallel_tool_calls": (bool,),
    "text": (dict,),
    "reasoning": (dict,),
    "max_output_tokens": (int,),
    "max_tool_calls": (int,),
    "metadata": (dict,),
    "truncation": (str,),
    "include": (list,),
    "store": (bool,),
    "stream": (bool,),
    "background": (bool,),
    "previous_response_id": (str,),
    "temperature": (int, float),
    "top_p": (int, float),
    "top_logprobs": (int,),
    "user": (str,),
    "safety_identifier": (str,),
    "prompt_cache_key": (str,),
    "service_tier": (str,),
    "stream_options": (dict,),
}
NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(slots=True)
class ResponsesRequest:
    """The checked request: what the client sent, its input as items, and its chat translation."""

    body: dict[str, Any]  # the client's fields, checked (proxy-only fields taken out)
    input_items: list[dict[str, Any]]  # this request's own input, normalised, with ids
    history: list[dict[str, Any]] = field(default_factory=list)  # from previous_response_id
    response_id: str = field(default_factory=lambda: new_id("resp"))
    sent: list[dict[str, Any]] | None = None  # the conversation after ``truncation: auto``, if shortened
    _tools: ChatTools | None = None

    @property
    def tools(self) -> ChatTools:
        if self._tools is None:
            self._tools = chat_tools(self.body.get("tools") or [])
        return self._tools

    @property
    def store(self) -> bool:
        return self.body.get("store") is not False

    def conversation(self) -> list[dict[str, Any]]:
        return [*self.history, *self.input_items]

    def native(self) -> dict[str, Any]:
        """The request for an upstream that speaks Responses: the conversation inline, nothing stored."""
        request = {k: v for k, v in self.body.items() if k not in ("previous_response_id", "store", "background")}
        request["input"] = [_for_upstream(item) for item in self.upstream_items() if _keeps(item)]
        return request

    def chat(self) -> dict[str, Any]:
        return chat_body(self.body, self.upstream_items(), self.tools)

    def upstream_items(self) -> list[dict[str, Any]]:
        return self.sent if self.sent is not None else self.conversation()


def _keeps(item: dict[str, Any]) -> bool:
    # A reasoning item without its encrypted content means nothing to a stateless upstream.
    return item.get("type") != "reasoning" or bool(item.get("encrypted_content"))


def _for_upstream(item: dict[str, Any]) -> dict[str, Any]:
    # Ids the proxy gave input messages mean nothing to the upstream.
    if item.get("type") == "message" and item.get("role") != "assistant" and str(item.get("id")).startswith("msg_"):
        return {k: v for k, v in item.items() if k != "id"}
    return item


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(NAMES.get(t.__name__, "a list" if t is list else "an object") for t in types)


def check_id(value: Any, param: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise invalid_request(f"'{param}' must be a response id such as 'resp_abc123'", param=param)
    return value


def parse_request(body: Any) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    for key, types in TYPES.items():
        value = body.get(key)
        if value is not None and type(value) not in types:
            raise invalid_request(f"'{key}' must be {_type_name(types)}", param=key)
    model = body.get("model")
    if not model:
        raise invalid_request("missing required field 'model'", param="model")
    if len(model) > MAX_MODEL or "\x00" in model:
        raise invalid_request("'model' is not a valid model name", param="model")
    if body.get("background") is True:
        raise invalid_request(
            "'background' responses are not supported by this proxy; omit it or set it to false", param="background"
        )
    if body.get("previous_response_id") is not None:
        check_id(body["previous_response_id"], "previous_response_id")
    _check_metadata(body.get("metadata"))
    _check_options(body)
    raw_input = body.get("input")
    if raw_input is None and body.get("previous_response_id") is None:
        raise invalid_request("missing required field 'input'", param="input")
    items = normalise_input(raw_input if raw_input is not None else [])
    if body.get("tools") is not None:
        chat_tools(body["tools"])  # checked now, translated once the conversation is known
    if body.get("tool_choice") is not None:
        chat_tool_choice(body["tool_choice"])
    return ResponsesRequest(body=body, input_items=items)


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid_request(f"'metadata' may hold at most {MAX_METADATA_KEYS} keys", param="metadata")
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY or "\x00" in key:
            raise invalid_request(f"metadata keys must be at most {MAX_METADATA_KEY} characters", param="metadata")
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE or "\x00" in value:
            raise invalid_request(
                f"metadata values must be strings of at most {MAX_METADATA_VALUE} characters", param="metadata"
            )


def _check_options(body: dict[str, Any]) -> None:
    truncation = body.get("truncation")
    if truncation is not None and truncation not in ("auto", "disabled"):
        raise invalid_request("'truncation' must be 'auto' or 'disabled'", param="truncation")
    include = body.get("include")
    if include is not None:
        for i, name in enumerate(include):
            if not isinstance(name, str) or name not in INCLUDABLE:
                raise invalid_request(f"include[{i}] is not a value 'include' accepts", param=f"include[{i}]")
    reasoning = body.get("reasoning")
    if reasoning is not None:
        effort = reasoning.get("effort")
        if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
            raise invalid_request(
                f"'reasoning.effort' must be one of {', '.join(sorted(EFFORTS))}", param="reasoning.effort"
            )
    text = body.get("text")
    if text is not None:
        fmt = text.get("format")
        if fmt is not None:
            response_format(fmt)
    for name in ("max_output_tokens", "max_tool_calls"):
        value = body.get(name)
        if value is not None and value < 1:
            raise invalid_request(f"'{name}' must be at least 1", param=name)


# -- input ---------------------------------------------------------------------------------------


def normalise_input(value: str | list[Any]) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [_message("user", [{"type": "input_text", "text": value}])]
    return [_item(item, f"input[{i}]") for i, item in enumerate(value)]


def _message(role: str, content: list[dict[str, Any]], item_id: str | None = None) -> dict[str, Any]:
    return {"type": "message", "id": item_id or new_id("msg"), "role": role, "content": content}


def _string(item: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{where}.{key} must be a string", param=f"{where}.{key}")
    return value


def _item_id(item: dict[str, Any], where: str) -> str | None:
    value = item.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise invalid_request(f"{where}.id must be an item id", param=f"{where}.id")
    return value


def _item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise invalid_request(f"{where} must be an object", param=where)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise invalid_request(f"{where}.role must be one of {', '.join(sorted(ROLES))}", param=f"{where}.role")
        content = item.get("content")
        if isinstance(content, str):
            parts = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
        elif isinstance(content, list):
            parts = [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
        else:
            raise invalid_request(f"{where}.content must be a string or a list", param=f"{where}.content")
        message = _message(role, parts, _item_id(item, where))
        if role == "assistant":
            message["status"] = "completed"
        return message
    if kind == "function_call":
        call = {
            "type": "function_call",
            "id": _item_id(item, where) or new_id("fc"),
            "call_id": _string(item, "call_id", where),
            "name": _string(item, "name", where),
            "arguments": _string(item, "arguments", where),
            "status": "completed",
        }
        namespace = _string(item, "namespace", where, required=False)
        if namespace is not None:
            call["namespace"] = namespace
        return call
    if kind == "custom_tool_call":
        return {
            "type": "custom_tool_call",
            "id": _item_id(item, where) or new_id("ctc"),
            "call_id": _string(item, "call_id", where),
            "name": _string(item, "name", where),
            "input": _string(item, "input", where),
        }
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(_output_text(p, f"{where}.output") for p in output)
        if not isinstance(output, str):
            raise invalid_request(f"{where}.output must be a string or a list", param=f"{where}.output")
        return {
            "type": kind,
            "id": _item_id(item, where) or new_id("fco"),
            "call_id": _string(item, "call_id", where),
            "output": output,
            "status": "completed",
        }
    if kind == "reasoning":
        summary = item.get("summary", [])
        if not isinstance(summary, list) or not all(isinstance(s, dict) for s in summary):
            raise invalid_request(f"{where}.summary must be a list of objects", param=f"{where}.summary")
        reasoning: dict[str, Any] = {
            "type": "reasoning",
            "id": _item_id(item, where) or new_id("rs"),
            "summary": summary,
        }
        for key in ("content", "encrypted_content"):
            if item.get(key) is not None:
                reasoning[key] = item[key]
        return reasoning
    if kind == "item_reference":
        raise invalid_request(f"{where}: item references are not supported; send the item itself", param=where)
    raise invalid_request(f"{where}.type '{str(kind)[:64]}' is not supported by this proxy", param=f"{where}.type")


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise invalid_request(f"{where} must be an object", param=where)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "refusal", "summary_text", "reasoning_text"):
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key)
        if not isinstance(text, str):
            raise invalid_request(f"{where}.{key} must be a string", param=f"{where}.{key}")
        if kind == "output_text":
            return {"type": "output_text", "text": text, "annotations": []}
        return {"type": kind, key: text}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise invalid_request(
                f"{where}.image_url must be a URL or data URL (file ids are not supported)", param=f"{where}.image_url"
            )
        detail = part.get("detail") or "auto"
        if detail not in ("auto", "low", "high"):
            raise invalid_request(f"{where}.detail must be auto, low or high", param=f"{where}.detail")
        return {"type": "input_image", "image_url": url, "detail": detail}
    raise invalid_request(f"{where}.type '{str(kind)[:64]}' is not supported by this proxy", param=f"{where}.type")


def _output_text(part: Any, where: str) -> str:
    if (
        isinstance(part, dict)
        and part.get("type") in ("input_text", "output_text")
        and isinstance(part.get("text"), str)
    ):
        return str(part["text"])
    raise invalid_request(f"{where} may hold only text parts", param=where)


# -- the chat translation ----------------------------------------------------------------------


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
    tools: list[dict[str, Any]]
    names: dict[str, ToolName]  # chat name -> Responses tool, for namespaced and custom tools
    dropped: list[str]  # hosted tools (web_search, ...) that a chat upstream cannot run


def chat_tools(tools: list[Any]) -> ChatTools:
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


def _tool_name(tool: dict[str, Any], where: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_ID:
        raise invalid_request(f"{where}.name must be a string of at most {MAX_ID} characters", param=f"{where}.name")
    return name


def _add_tool(out: ChatTools, tool: Any, where: str, namespace: str | None) -> None:
    if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
        raise invalid_request(f"{where} must be a function or custom tool", param=where)
    name = _tool_name(tool, where)
    chat_name = f"{namespace}{SEPARATOR}{name}" if namespace else name
    function: dict[str, Any] = {"name": chat_name}
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


def chat_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise invalid_request("'tool_choice' must be auto, none, required or a function", param="tool_choice")
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise invalid_request("'tool_choice' may name only a function tool: {type: function, name}", param="tool_choice")


def response_format(fmt: Any) -> dict[str, Any] | None:
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
        spec: dict[str, Any] = {"name": name, "schema": schema}
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        if isinstance(fmt.get("description"), str):
            spec["description"] = fmt["description"]
        return {"type": "json_schema", "json_schema": spec}
    raise invalid_request("'text.format.type' must be text, json_object or json_schema", param="text.format.type")


def chat_messages(instructions: str | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
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
                content: Any = "".join(p["text"] for p in parts)
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


def _assistant(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message to add to: the last one, unless a user or tool message came after it."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[-1]
    message: dict[str, Any] = {"role": "assistant", "content": None}
    messages.append(message)
    return message


def _chat_part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "input_image":
        return {"type": "image_url", "image_url": {"url": part["image_url"], "detail": part["detail"]}}
    return {"type": "text", "text": part.get("text") or part.get("refusal") or ""}


def chat_body(body: dict[str, Any], items: list[dict[str, Any]], tools: ChatTools) -> dict[str, Any]:
    chat: dict[str, Any] = {"model": body["model"], "messages": chat_messages(body.get("instructions"), items)}
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


# -- truncation ------------------------------------------------------------------------------------


def truncate(request: ResponsesRequest, limit: int, estimate: Any) -> int:
    """``truncation: auto``: leave out the oldest conversation items until the chat request fits ``limit``
    tokens (by ``estimate``), keeping the newest item. A function call goes together with its output,
    so the chat messages stay valid. What is stored stays whole. Returns how many items were left out."""
    items = request.conversation()
    dropped = 0
    while len(items) > 1 and estimate(chat_body(request.body, items, request.tools)) > limit:
        first = items.pop(0)
        dropped += 1
        call_id = first.get("call_id") if first.get("type") in ("function_call", "custom_tool_call") else None
        if call_id is not None:
            kept = [i for i in items if not (i.get("call_id") == call_id and i["type"].endswith("_output"))]
            dropped += len(items) - len(kept)
            items = kept
        while len(items) > 1 and items[0]["type"] in ("function_call_output", "custom_tool_call_output", "reasoning"):
            items.pop(0)
            dropped += 1
    if dropped:
        request.sent = items
    return dropped
