"""Forced tool choice on Ollama, emulated with its structured outputs.

Ollama has no ``tool_choice``: a model called with tools may answer in text. A request that forces a
call — ``tool_choice: "required"`` or a named function — is sent without tools and with ``format``
set to a JSON schema instead: the function's parameters (one function), or for ``"required"`` with
several functions a choice of ``{"name": <const>, "arguments": <its parameters>}`` objects. A short
system instruction tells the model which function it is calling. The constrained answer is returned
as the tool call the client asked for (``finish_reason: "tool_calls"``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import orjson

from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue

EMPTY_PARAMETERS: JSONObject = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ForcedTool:
    names: tuple[str, ...]  # one: the output is its arguments; several: {"name", "arguments"}
    schema: JSONObject
    hint: str

    def tool_calls(self, text: str) -> list[JSONObject]:
        """The constrained output as OpenAI tool calls (without stream indexes)."""
        try:
            data = orjson.loads(text) if text.strip() else None
        except orjson.JSONDecodeError:
            data = None
        name: JSONValue
        if len(self.names) == 1:
            name, arguments = self.names[0], data
        elif isinstance(data, dict):
            name, arguments = data.get("name"), data.get("arguments")
        else:
            name, arguments = None, None
        if name not in self.names or not isinstance(arguments, dict):
            raise ProxyError(
                ErrorKind.UPSTREAM,
                "Ollama's constrained answer to a forced tool call is not a valid call "
                f"(expected the arguments of {', '.join(self.names)} as JSON): {text[:200]!r}",
            )
        return [
            {
                "id": "call_" + secrets.token_hex(12),
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
            }
        ]


def _functions(tools: JSONValue) -> list[JSONObject]:
    if not isinstance(tools, list) or not tools:
        raise invalid_request("a forced tool_choice needs a non-empty list of 'tools'", param="tool_choice")
    found = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise invalid_request("only function tools with a name are supported", param=f"tools[{k}]")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise invalid_request("a function's parameters must be a JSON schema object", param=f"tools[{k}]")
        found.append(fn)
    return found


def _parameters(fn: JSONObject) -> JSONObject:
    params = fn.get("parameters")
    return params if isinstance(params, dict) and params else EMPTY_PARAMETERS


def _described(fn: JSONObject) -> str:
    description = fn.get("description")
    text = f"'{fn['name']}'"
    return f"{text} ({description.strip()[:500]})" if isinstance(description, str) and description.strip() else text


def forced_tool(body: JSONObject) -> ForcedTool | None:
    """The forced call a chat request asks for, or None (``auto``, ``none`` or no ``tool_choice``)."""
    choice = body.get("tool_choice")
    if choice is None or choice == "auto" or choice == "none":
        return None
    if choice == "required":
        chosen = _functions(body.get("tools"))
    elif isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if choice.get("type") == "function" and isinstance(fn, dict) else None
        if not isinstance(name, str):
            raise invalid_request(
                'tool_choice must be \'auto\', \'none\', \'required\' or {"type": "function", "function": {"name"}}',
                param="tool_choice",
            )
        chosen = [f for f in _functions(body.get("tools")) if f["name"] == name]
        if not chosen:
            raise invalid_request(f"tool_choice names function '{name}', which is not in 'tools'", param="tool_choice")
    else:
        raise invalid_request("tool_choice must be 'auto', 'none', 'required' or a named function", param="tool_choice")
    if len(chosen) == 1:
        fn = chosen[0]
        return ForcedTool(
            (fn["name"],),
            _parameters(fn),
            f"Call the function {_described(fn)} now. Answer with its arguments only: "
            "one JSON object that matches the function's parameters.",
        )
    choices = [
        {
            "type": "object",
            "properties": {"name": {"type": "string", "const": fn["name"]}, "arguments": _parameters(fn)},
            "required": ["name", "arguments"],
        }
        for fn in chosen
    ]
    return ForcedTool(
        tuple(fn["name"] for fn in chosen),
        {"anyOf": choices},
        "Call exactly one of these functions now: "
        + "; ".join(_described(fn) for fn in chosen)
        + '. Answer with one JSON object: {"name": <the function\'s name>, "arguments": <its arguments>}.',
    )


def with_hint(messages: list[JSONObject], hint: str) -> list[JSONObject]:
    """Ollama messages with the forced call's instruction in the (first) system message."""
    if messages and messages[0].get("role") == "system":
        first = messages[0]
        return [{**first, "content": f"{first.get('content') or ''}\n\n{hint}".lstrip()}, *messages[1:]]
    return [{"role": "system", "content": hint}, *messages]
