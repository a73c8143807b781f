"""A Responses API request's ``input``, checked and normalised to items with ids.

``input`` (a string or a list of items) becomes the items ``GET /v1/responses/{id}/input_items``
returns. A wrong type or value is a 400 naming the field in OpenAI's error shape.
"""

from __future__ import annotations

import re
import uuid

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue

ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
ROLES = frozenset({"user", "system", "developer", "assistant"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def normalise_input(value: str | list[JSONValue]) -> list[JSONObject]:
    if isinstance(value, str):
        return [_message("user", [{"type": "input_text", "text": value}])]
    return [_item(item, f"input[{i}]") for i, item in enumerate(value)]


def _message(role: str, content: list[JSONObject], item_id: str | None = None) -> JSONObject:
    return {"type": "message", "id": item_id or new_id("msg"), "role": role, "content": content}


def _string(item: JSONObject, key: str, where: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{where}.{key} must be a string", param=f"{where}.{key}")
    return value


def _item_id(item: JSONObject, where: str) -> str | None:
    value = item.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise invalid_request(f"{where}.id must be an item id", param=f"{where}.id")
    return value


def _item(item: JSONValue, where: str) -> JSONObject:
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
        reasoning: JSONObject = {
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


def _part(part: JSONValue, where: str) -> JSONObject:
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


def _output_text(part: JSONValue, where: str) -> str:
    if (
        isinstance(part, dict)
        and part.get("type") in ("input_text", "output_text")
        and isinstance(part.get("text"), str)
    ):
        return str(part["text"])
    raise invalid_request(f"{where} may hold only text parts", param=where)
