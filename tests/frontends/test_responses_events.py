"""The Responses event sequence, from recorded chat-completion streams (tests/frontends/fixtures).

Each case holds the gateway's chat SSE events as an upstream sent them and the Responses events the
proxy must send for them. Every event is also validated against the OpenAI SDK's own event models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import orjson
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from proxyllm.core.context import RequestContext
from proxyllm.core.types import Operation, Usage
from proxyllm.frontends.responses.output import from_chat
from proxyllm.frontends.responses.request import parse_request
from proxyllm.frontends.responses.stream import ResponsesStreamEncoder, replay

CASES = orjson.loads((Path(__file__).parent / "fixtures" / "responses_events.json").read_bytes())
MODELS = {m.model_fields["type"].annotation.__args__[0]: m for m in get_args(get_args(ResponseStreamEvent)[0])}
TOOLS = [{"type": "function", "name": "get_weather"}, {"type": "function", "name": "get_time"}]


def decode(raw: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for event in raw:
        for block in event.split(b"\n\n"):
            if not block:
                continue
            name, data = block.split(b"\n")
            assert name.startswith(b"event: ")
            parsed = orjson.loads(data.removeprefix(b"data: "))
            assert parsed["type"] == name[7:].decode()
            events.append(parsed)
    return events


def summary(event: dict[str, Any]) -> dict[str, Any]:
    row = {"type": event["type"]}
    for key in ("output_index", "delta", "text", "arguments", "name", "message"):
        if key in event:
            row[key] = event[key]
    if "response" in event:
        row["status"] = event["response"]["status"]
    return row


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_stream(name: str) -> None:
    case = CASES[name]
    encoder = ResponsesStreamEncoder(parse_request({"model": "m", "input": "hi", "tools": TOOLS}), model="m")
    out: list[bytes] = []
    for chunk in case["chat"]:
        out += encoder.feed(chunk.encode())
    ctx = RequestContext(request_id="r", operation=Operation.RESPONSES, body={"model": "m"})
    ctx.usage = Usage(*case["usage"]) if case["usage"] else None
    out += encoder.finish(ctx)
    events = decode(out)
    assert [summary(e) for e in events] == case["events"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        MODELS[event["type"]].model_validate(event, strict=False)  # the SDK's own model of the event
    final = events[-1]["response"]
    assert encoder.response == final
    Response.model_validate(final)
    if case["usage"]:
        assert final["usage"]["input_tokens"] == case["usage"][0]
        assert final["usage"]["output_tokens"] == case["usage"][1]


def test_item_ids_match_between_events() -> None:
    case = CASES["reasoning_text_and_parallel_tool_calls"]
    encoder = ResponsesStreamEncoder(parse_request({"model": "m", "input": "hi"}), model="m")
    events = decode([e for chunk in case["chat"] for e in encoder.feed(chunk.encode())])
    ctx = RequestContext(request_id="r", operation=Operation.RESPONSES, body={"model": "m"})
    events += decode(encoder.finish(ctx))
    added = {e["output_index"]: e["item"]["id"] for e in events if e["type"] == "response.output_item.added"}
    done = {e["output_index"]: e["item"]["id"] for e in events if e["type"] == "response.output_item.done"}
    assert added == done and len(added) == 4
    for event in events:
        if "item_id" in event:
            assert event["item_id"] == added[event["output_index"]]
    calls = [
        e["item"] for e in events if e["type"] == "response.output_item.done" and e["item"]["type"] == "function_call"
    ]
    assert [(c["call_id"], c["name"]) for c in calls] == [("call_a", "get_weather"), ("call_b", "get_time")]


def test_replay_of_a_body_is_a_valid_sequence() -> None:
    """A stream request answered with one body (e.g. a mock response) is replayed as events."""
    request = parse_request({"model": "m", "input": "hi"})
    chat = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    response = from_chat(request, chat, None, model="m")
    events = decode(replay(response))
    for event in events:
        MODELS[event["type"]].model_validate(event)
    assert events[-1]["type"] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"]["usage"]["output_tokens"] == 2


def test_native_events_pass_through_unchanged() -> None:
    encoder = ResponsesStreamEncoder(parse_request({"model": "m", "input": "hi"}), model="m")
    created = b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{}}\n\n'
    final = {"type": "response.completed", "sequence_number": 2, "response": {"id": "resp_x", "status": "completed"}}
    done = b"event: response.completed\ndata: " + orjson.dumps(final) + b"\n\n"
    delta = {"type": "response.output_text.delta", "sequence_number": 1, "delta": 'say "response.completed"'}
    text = b"event: response.output_text.delta\ndata: " + orjson.dumps(delta) + b"\n\n"
    assert encoder.feed(created) == [created]
    assert encoder.feed(text) == [text]  # a delta that merely mentions the final event's name
    assert encoder.response is None
    assert encoder.feed(done) == []  # the final event waits until the response may be stored
    assert encoder.response == final["response"]
    ctx = RequestContext(request_id="r", operation=Operation.RESPONSES, body={"model": "m"})
    assert encoder.finish(ctx) == [done]
