"""The checks on an Anthropic Messages request before anything else reads it (pure).

Every shape current Anthropic clients send is accepted — Claude Code's included: ``system`` turns
anywhere in ``messages`` (the mid-conversation system beta), ``thinking`` (``enabled`` with
``budget_tokens``, ``adaptive``, ``disabled``), ``output_config``, ``context_management``,
``metadata``, ``cache_control`` on any block, tool definitions with ``input_examples`` and server tool
types. What is checked is what could hurt: types, ranges and sizes of the fields the proxy reads. A
request that fails is a 400 naming the field, in Anthropic's error shape (``frontends/anthropic.py``);
fields the proxy does not read go to an Anthropic upstream as they are and are dropped for others.
"""

from __future__ import annotations

import math

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "messages": (list,),
    "max_tokens": (int,),
    "system": (str, list),
    "stream": (bool,),
    "stop_sequences": (list,),
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": (int,),
    "tools": (list,),
    "tool_choice": (dict,),
    "thinking": (dict,),
    "metadata": (dict,),
    "output_config": (dict,),
    "context_management": (dict,),
}
ROLES = ("user", "assistant", "system")
MAX_INT = 2**31 - 1
MAX_NAME = 256  # model and tool names
MAX_STOPS = 64
MAX_STOP_CHARS = 1000
MAX_USER_ID = 512
THINKING_TYPES = ("enabled", "disabled", "adaptive")


def _number(body: JSONObject, key: str, low: float, high: float) -> None:
    value = body.get(key)
    if value is None:
        return
    if type(value) is bool or not math.isfinite(value) or not low <= value <= high:
        raise invalid_request(f"'{key}' must be a number from {low:g} to {high:g}", param=key)


def _whole(value: JSONValue, where: str, low: int, high: int = MAX_INT) -> None:
    if type(value) is not int or not low <= value <= high:
        raise invalid_request(f"'{where}' must be a whole number from {low} to {high}", param=where)


def _name(value: JSONValue, where: str) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or "\x00" in value:
        raise invalid_request(f"'{where}' must be a non-empty string of at most {MAX_NAME} characters", param=where)


def _blocks(content: JSONValue, where: str) -> None:
    """A message's (or system's) content: a string or a list of blocks, each an object with a type."""
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid_request(f"{where} must be a string or a list", param=where)
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid_request(f"{where}[{j}] must be an object with a 'type'", param=f"{where}[{j}]")
        cache = block.get("cache_control")
        if cache is not None and not isinstance(cache, dict):
            raise invalid_request(f"{where}[{j}].cache_control must be an object", param=f"{where}[{j}].cache_control")
        text = block.get("text")
        if text is not None and not isinstance(text, str):
            raise invalid_request(f"{where}[{j}].text must be a string", param=f"{where}[{j}].text")


def _thinking(thinking: JSONObject) -> None:
    kind = thinking.get("type")
    if kind not in THINKING_TYPES:
        raise invalid_request("thinking.type must be 'enabled', 'disabled' or 'adaptive'", param="thinking.type")
    budget = thinking.get("budget_tokens")
    if budget is not None:
        _whole(budget, "thinking.budget_tokens", 0)


def _tools(tools: list[JSONValue]) -> None:
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_request(f"tools[{k}] must be an object", param=f"tools[{k}]")
        _name(tool.get("name"), f"tools[{k}].name")
        kind = tool.get("type")
        if kind is not None and not isinstance(kind, str):
            raise invalid_request(f"tools[{k}].type must be a string", param=f"tools[{k}].type")
        for key in ("input_schema", "cache_control"):
            if tool.get(key) is not None and not isinstance(tool[key], dict):
                raise invalid_request(f"tools[{k}].{key} must be an object", param=f"tools[{k}].{key}")
        if tool.get("description") is not None and not isinstance(tool["description"], str):
            raise invalid_request(f"tools[{k}].description must be a string", param=f"tools[{k}].description")


def check_request(body: JSONValue) -> JSONObject:
    """Types, ranges and required fields of an Anthropic request; a 400 naming the field otherwise."""
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    for name in ("model", "messages"):
        if body.get(name) is None:
            raise invalid_request(f"missing required field '{name}'", param=name)
    for key, types in FIELD_TYPES.items():
        value = body.get(key)
        if value is not None and type(value) not in types:
            kinds = " or ".join(t.__name__ for t in types)
            raise invalid_request(f"'{key}' must be of type {kinds}", param=key)
    _name(body["model"], "model")
    if not body["messages"]:
        raise invalid_request("'messages' must contain at least one message", param="messages")
    for i, msg in enumerate(body["messages"]):
        if not isinstance(msg, dict) or msg.get("role") not in ROLES:
            raise invalid_request(
                f"messages[{i}].role must be 'user', 'assistant' or 'system'", param=f"messages[{i}].role"
            )
        _blocks(msg.get("content"), f"messages[{i}].content")
    if body.get("system") is not None:
        _blocks(body["system"], "system")
    if body.get("max_tokens") is not None:
        _whole(body["max_tokens"], "max_tokens", 1)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    if body.get("top_k") is not None:
        _whole(body["top_k"], "top_k", 0)
    stops = body.get("stop_sequences") or []
    if len(stops) > MAX_STOPS or not all(isinstance(s, str) and len(s) <= MAX_STOP_CHARS for s in stops):
        raise invalid_request(
            f"'stop_sequences' must be at most {MAX_STOPS} strings of at most {MAX_STOP_CHARS} characters",
            param="stop_sequences",
        )
    if body.get("thinking") is not None:
        _thinking(body["thinking"])
    if body.get("tools"):
        _tools(body["tools"])
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice.get("type"), str):
            raise invalid_request("tool_choice.type must be a string", param="tool_choice.type")
        if choice.get("name") is not None:
            _name(choice["name"], "tool_choice.name")
    user = (body.get("metadata") or {}).get("user_id")
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER_ID):
        raise invalid_request(
            f"metadata.user_id must be a string of at most {MAX_USER_ID} characters", param="metadata.user_id"
        )
    effort = (body.get("output_config") or {}).get("effort")
    if effort is not None and not isinstance(effort, str):
        raise invalid_request("output_config.effort must be a string", param="output_config.effort")
    return body
