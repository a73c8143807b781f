"""The Responses request as a chat request, and chat answers as Responses items (pure functions)."""

from __future__ import annotations

from typing import Any

import orjson
from openai.types.responses import Response

from proxyllm.core.context import RequestContext
from proxyllm.core.types import Operation
from proxyllm.frontends.responses.output import from_chat
from proxyllm.frontends.responses.request import parse_request
from proxyllm.frontends.responses.stream import ResponsesStreamEncoder

TOOLS: list[Any] = [
    {"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}},
    {"type": "custom", "name": "apply_patch", "description": "Apply a patch"},
    {"type": "namespace", "name": "crm", "description": "CRM", "tools": [{"type": "function", "name": "lookup"}]},
    {"type": "web_search"},
]


def test_request_to_chat() -> None:
    request = parse_request(
        {
            "model": "m",
            "instructions": "be brief",
            "max_output_tokens": 50,
            "temperature": 0.2,
            "reasoning": {"effort": "minimal"},
            "parallel_tool_calls": False,
            "text": {"format": {"type": "json_object"}},
            "tools": TOOLS,
            "input": [
                {"role": "developer", "content": "rules"},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                    ],
                },
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sure."}]},
                {"type": "function_call", "call_id": "c1", "name": "lookup", "namespace": "crm", "arguments": "{}"},
                {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "ok"}]},
                {"type": "custom_tool_call_output", "call_id": "c2", "output": "applied"},
            ],
        }
    )
    chat = request.chat()
    assert chat["max_tokens"] == 50 and chat["temperature"] == 0.2 and chat["reasoning_effort"] == "low"
    assert chat["response_format"] == {"type": "json_object"} and chat["parallel_tool_calls"] is False
    assert [t["function"]["name"] for t in chat["tools"]] == ["exec_command", "apply_patch", "crm__lookup"]
    assert chat["tools"][1]["function"]["parameters"]["required"] == ["input"]
    messages = chat["messages"]
    assert [m["role"] for m in messages] == ["system", "system", "user", "assistant", "tool", "tool"]
    assert messages[0]["content"] == "be brief" and messages[1]["content"] == "rules"
    assert messages[2]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"},
    }
    assistant = messages[3]
    assert assistant["content"] == "Sure."
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["crm__lookup", "apply_patch"]
    assert orjson.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"input": "*** Begin Patch"}
    assert messages[4] == {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    native = request.native()
    assert native["tools"] == TOOLS  # a Responses upstream gets every tool, hosted ones included
    assert all(item["type"] != "reasoning" for item in native["input"])  # no encrypted content: left out
    assert "store" not in native and "previous_response_id" not in native


def test_chat_answer_to_items() -> None:
    request = parse_request({"model": "m", "input": "hi", "tools": TOOLS})
    calls = [
        {"id": "a", "type": "function", "function": {"name": "crm__lookup", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input": "P"}'}},
    ]
    chat = {
        "created": 5,
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": "", "reasoning_content": "think", "tool_calls": calls},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    response = from_chat(request, chat, None, model="m")
    Response.model_validate(response)
    kinds = [(i["type"], i.get("name"), i.get("namespace")) for i in response["output"]]
    assert kinds == [
        ("reasoning", None, None),
        ("function_call", "lookup", "crm"),
        ("custom_tool_call", "apply_patch", None),
    ]
    assert response["output"][2]["input"] == "P"
    assert response["usage"]["total_tokens"] == 7 and response["created_at"] == 5


def test_streamed_custom_tool_call() -> None:
    request = parse_request({"model": "m", "input": "hi", "tools": TOOLS})
    encoder = ResponsesStreamEncoder(request, model="m")
    head = {"index": 0, "id": "b", "type": "function", "function": {"name": "apply_patch", "arguments": '{"inp'}}
    tail = {"index": 0, "function": {"arguments": 'ut": "P"}'}}
    out: list[bytes] = []
    for call in (head, tail):
        chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
        out += encoder.feed(b"data: " + orjson.dumps(chunk) + b"\n\n")
    out += encoder.finish(RequestContext(request_id="r", operation=Operation.RESPONSES, body={"model": "m"}))
    types = [orjson.loads(e.split(b"\n")[1][6:])["type"] for e in out]
    assert types[-4:] == [
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "response.function_call_arguments.delta" not in types
    assert encoder.response is not None and encoder.response["output"][0]["input"] == "P"


def test_only_hosted_tools_send_no_tools() -> None:
    chat = parse_request({"model": "m", "input": "hi", "tools": [{"type": "web_search"}], "tool_choice": "auto"}).chat()
    assert "tools" not in chat and "tool_choice" not in chat


def test_truncation_auto_drops_oldest_items_and_call_pairs() -> None:
    from proxyllm.core.pricing import estimate_prompt_tokens
    from proxyllm.frontends.responses.request import truncate

    old = "x" * 4000
    request = parse_request(
        {
            "model": "m",
            "truncation": "auto",
            "input": [
                {"role": "user", "content": old},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": old},
                {"role": "user", "content": "newest"},
            ],
        }
    )
    assert truncate(request, 100, estimate_prompt_tokens) == 3
    assert [m["content"] for m in request.chat()["messages"]] == ["newest"]
    assert len(request.conversation()) == 4  # what is stored stays whole
    whole = parse_request({"model": "m", "input": "short"})
    assert truncate(whole, 100, estimate_prompt_tokens) == 0 and whole.sent is None
