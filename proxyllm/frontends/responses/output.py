"""The Response object: built from a chat completion, or taken from an upstream that speaks Responses."""

from __future__ import annotations

import time

import orjson

from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.types import Usage
from proxyllm.frontends.responses.request import ResponsesRequest, new_id

ECHOED = (
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "previous_response_id",
    "safety_identifier",
    "prompt_cache_key",
    "user",
    "top_logprobs",
)


def response_usage(usage: Usage | None) -> JSONObject | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def skeleton(request: ResponsesRequest, *, model: str, status: str, created_at: int | None = None) -> JSONObject:
    """A Response object with no output yet: what ``response.created`` carries."""
    body = request.body
    text = body.get("text") or {}
    response: JSONObject = {
        "id": request.response_id,
        "object": "response",
        "created_at": created_at or int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": request.store,
        "temperature": body.get("temperature", 1.0),
        "text": {**text, "format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "metadata": body.get("metadata") or {},
    }
    for name in ECHOED:
        response[name] = body.get(name)
    return response


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> JSONObject:
    return {
        "type": "message",
        "id": item_id or new_id("msg"),
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def reasoning_item(text: str, item_id: str | None = None) -> JSONObject:
    return {
        "type": "reasoning",
        "id": item_id or new_id("rs"),
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def function_call_item(call_id: str, name: str, arguments: str, item_id: str | None = None) -> JSONObject:
    return {
        "type": "function_call",
        "id": item_id or new_id("fc"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def call_item(
    request: ResponsesRequest, call_id: str, chat_name: str, arguments: str, item_id: str | None = None
) -> JSONObject:
    """A chat tool call as the Responses item it stands for: a function call (namespaced or not) or a
    custom tool call, whose free-form input travelled as ``{"input": ...}``."""
    tool = request.tools.names.get(chat_name)
    if tool is None:
        return function_call_item(call_id, chat_name, arguments, item_id)
    if tool.custom:
        try:
            value = orjson.loads(arguments).get("input") if arguments else ""
        except (orjson.JSONDecodeError, AttributeError):
            value = arguments
        return {
            "type": "custom_tool_call",
            "id": item_id or new_id("ctc"),
            "call_id": call_id,
            "name": tool.name,
            "input": value if isinstance(value, str) else arguments,
            "status": "completed",
            **({"namespace": tool.namespace} if tool.namespace else {}),
        }
    return {**function_call_item(call_id, tool.name, arguments, item_id), "namespace": tool.namespace}


def finish(response: JSONObject, finish_reason: JSONValue, usage: Usage | None) -> JSONObject:
    """Set status, incomplete details and usage from the chat finish reason."""
    if finish_reason == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
    else:
        response["status"] = "completed"
    response["usage"] = response_usage(usage)
    return response


def from_chat(request: ResponsesRequest, chat: JSONValue, usage: Usage | None, *, model: str) -> JSONObject:
    """A chat completion body as a Response object."""
    created = chat.get("created") if isinstance(chat, dict) else None
    response = skeleton(
        request, model=model, status="completed", created_at=created if isinstance(created, int) else None
    )
    choices = chat.get("choices") if isinstance(chat, dict) else None
    choice: JSONObject = (
        choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    )
    found = choice.get("message")
    message: JSONObject = found if isinstance(found, dict) else {}
    output: list[JSONObject] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(reasoning))
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(message_item(content))
    elif isinstance(message.get("refusal"), str):
        output.append(
            {
                "type": "message",
                "id": new_id("msg"),
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": message["refusal"]}],
            }
        )
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            arguments = function.get("arguments")
            output.append(
                call_item(
                    request,
                    str(call.get("id") or new_id("call")),
                    str(function.get("name") or ""),
                    arguments if isinstance(arguments, str) else "{}",
                )
            )
    response["output"] = output
    if usage is None and isinstance(chat, dict):
        usage = Usage.from_openai(chat.get("usage"))
    return finish(response, choice.get("finish_reason"), usage)


def output_text(response: JSONObject) -> str:
    parts = []
    for item in response.get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    parts.append(str(part.get("text") or ""))
    return "".join(parts)
