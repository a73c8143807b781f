"""The translation of what Claude Code really sends (``fixtures/claude_code_requests.json``, recorded
by ``test_claude_code.py``): its first turn ``[user, system]`` and its tool round trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from proxyllm.core.errors import ProxyError
from proxyllm.providers.anthropic.messages_request import check_request, estimate_input_tokens, openai_request
from proxyllm.providers.gemini.request import generate_request
from proxyllm.providers.ollama.chat import chat_request

RECORDED: list[dict[str, Any]] = orjson.loads(
    (Path(__file__).parent / "fixtures" / "claude_code_requests.json").read_bytes()
)
FIRST, ROUND_TRIP = (r["body"] for r in RECORDED)


def test_recorded_shapes_are_the_ones_claude_code_sends() -> None:
    assert "mid-conversation" in RECORDED[0]["anthropic-beta"] and RECORDED[0]["path"].endswith("?beta=true")
    assert [m["role"] for m in FIRST["messages"]] == ["user", "system"]
    assert FIRST["thinking"]["type"] == "adaptive" and FIRST["output_config"]["effort"]
    assert FIRST["context_management"]["edits"] and FIRST["metadata"]["user_id"]
    assert any("cache_control" in block for block in FIRST["system"])
    assert [m["role"] for m in ROUND_TRIP["messages"]][-2:] == ["assistant", "user"]


@pytest.mark.parametrize("body", [FIRST, ROUND_TRIP], ids=["first", "round_trip"])
def test_every_recorded_request_is_accepted(body: dict[str, Any]) -> None:
    assert check_request(copy.deepcopy(body)) == body
    assert estimate_input_tokens(body) > 1000  # count_tokens for a non-Anthropic model


def test_first_turn_to_openai_keeps_the_system_turn_in_place() -> None:
    req = openai_request(check_request(copy.deepcopy(FIRST)))
    roles = [m["role"] for m in req["messages"]]
    assert roles == ["system", "user", "system"]
    assert req["messages"][0]["content"].startswith("x-anthropic-billing-header")  # the system blocks, joined
    assert req["reasoning_effort"] == {"low": "low", "medium": "medium"}.get(FIRST["output_config"]["effort"], "high")
    names = [t["function"]["name"] for t in req["tools"]]
    assert names == [t["name"] for t in FIRST["tools"] if t.get("type") in (None, "custom")] and "Bash" in names
    assert req["stream"] is True and req["stream_options"] == {"include_usage": True}
    for left_out in ("thinking", "context_management", "output_config", "metadata", "cache_control"):
        assert left_out not in orjson.dumps(req).decode(), left_out


def test_tool_round_trip_to_openai() -> None:
    req = openai_request(check_request(copy.deepcopy(ROUND_TRIP)))
    assistant, tool = req["messages"][-2:]
    (call,) = assistant["tool_calls"]
    assert call["function"]["name"] == "Bash" and orjson.loads(call["function"]["arguments"])["command"]
    assert tool["role"] == "tool" and tool["tool_call_id"] == call["id"]
    assert "proxyllm-claude-42" in tool["content"]
    assert "thinking" not in orjson.dumps(assistant).decode(), "earlier thinking is not sent to other upstreams"


def test_to_ollama_thinks_and_calls_tools() -> None:
    req = chat_request(openai_request(check_request(copy.deepcopy(ROUND_TRIP))), "llama3", drop=True, stream=True)
    assert req["think"] is True
    assert [m["role"] for m in req["messages"]][-2:] == ["assistant", "tool"]
    assert req["messages"][-2]["tool_calls"][0]["function"]["arguments"]["command"]
    assert any(t["function"]["name"] == "Bash" for t in req["tools"])


def test_to_gemini_takes_the_mid_conversation_system_turn() -> None:
    req = generate_request(openai_request(check_request(copy.deepcopy(FIRST))), "gemini-2.5-pro", drop=True)
    text = orjson.dumps(req["systemInstruction"]).decode()
    assert "x-anthropic-billing-header" in text and "# Environment" in text


def test_hostile_variants_of_a_recorded_request_are_400s() -> None:
    for path, value in [
        (("max_tokens",), -1),
        (("thinking", "type"), None),
        (("thinking", "budget_tokens"), 2**63),
        (("messages", 1, "role"), "developer"),
        (("tools", 0, "name"), ""),
        (("tools", 0), "Bash"),
        (("metadata", "user_id"), "u" * 10_000),
        (("system", 1, "cache_control"), "ephemeral"),
    ]:
        body = copy.deepcopy(FIRST)
        target = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        with pytest.raises(ProxyError) as info:
            check_request(body)
        assert info.value.status == 400, path
