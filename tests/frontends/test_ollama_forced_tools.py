"""Forced tool choice on Ollama models, emulated with ``format``: the OpenAI SDK and pydantic-ai's
structured output through ``/v1/chat/completions`` against the Ollama fake (which honours ``format``)."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.providers.ollama.chat import chat_request
from proxyllm.providers.ollama.forced import forced_tool
from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.ollama_upstream import FakeOllama

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}},
    },
}
ASK: Any = [{"role": "user", "content": "weather in Paris?"}]


def test_named_function_is_its_parameters_schema() -> None:
    body = {
        "messages": ASK,
        "tools": [WEATHER, TIME],
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
    }
    req = chat_request(body, "llama3", drop=False, stream=False)
    assert "tools" not in req
    assert req["format"] == TIME["function"]["parameters"]
    assert req["messages"][0]["role"] == "system" and "get_time" in req["messages"][0]["content"]
    calls = forced_tool(body).tool_calls('{"zone": "UTC"}')  # type: ignore[union-attr]
    assert calls[0]["function"] == {"name": "get_time", "arguments": '{"zone":"UTC"}'}


def test_required_with_several_tools_is_a_choice_of_calls() -> None:
    forced = forced_tool({"tools": [WEATHER, TIME], "tool_choice": "required"})
    assert forced is not None and forced.names == ("get_weather", "get_time")
    choices = forced.schema["anyOf"]
    assert [c["properties"]["name"]["const"] for c in choices] == ["get_weather", "get_time"]
    assert choices[0]["properties"]["arguments"] == WEATHER["function"]["parameters"]
    call = forced.tool_calls('{"name": "get_time", "arguments": {"zone": "CET"}}')[0]
    assert call["function"]["name"] == "get_time" and orjson.loads(call["function"]["arguments"]) == {"zone": "CET"}
    with pytest.raises(ProxyError) as info:  # a name that is not among the choices
        forced.tool_calls('{"name": "rm_rf", "arguments": {}}')
    assert info.value.kind is ErrorKind.UPSTREAM


def test_system_message_keeps_its_place() -> None:
    body = {
        "messages": [{"role": "system", "content": "Be brief."}, *ASK],
        "tools": [WEATHER],
        "tool_choice": "required",
    }
    messages = chat_request(body, "llama3", drop=False, stream=False)["messages"]
    assert len(messages) == 2 and messages[0]["content"].startswith("Be brief.\n\nCall the function 'get_weather'")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not in 'tools'"),
        ({"tool_choice": "required"}, "needs a non-empty list"),
        ({"tools": [WEATHER], "tool_choice": "always"}, "tool_choice must be"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function"}}, "tool_choice must be"),
        (
            {"tools": [{"type": "function", "function": {"name": "x", "parameters": 3}}], "tool_choice": "required"},
            "schema",
        ),
    ],
)
def test_bad_choices_are_400(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ProxyError) as info:
        forced_tool(body)
    assert info.value.status == 400 and message in info.value.message


def test_output_that_is_not_json_is_an_upstream_error() -> None:
    forced = forced_tool({"tools": [WEATHER], "tool_choice": "required"})
    assert forced is not None
    for text in ("", "Paris", "[1, 2]"):
        with pytest.raises(ProxyError) as info:
            forced.tool_calls(text)
        assert info.value.kind is ErrorKind.UPSTREAM  # retried by the router like any bad answer


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
async def test_forced_call_through_the_proxy(
    shared_proxy: ProxyServer, ollama_upstream: FakeOllama, stream: bool, choice: Any
) -> None:
    client = openai.AsyncOpenAI(base_url=f"{shared_proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
    kwargs: Any = {"model": "llama3", "messages": ASK, "tools": [WEATHER]}
    if stream:
        pieces = [c async for c in await client.chat.completions.create(**kwargs, tool_choice=choice, stream=True)]
        calls = [call for c in pieces if c.choices for call in c.choices[0].delta.tool_calls or []]
        finish = [c.choices[0].finish_reason for c in pieces if c.choices and c.choices[0].finish_reason]
        assert [c.function.name for c in calls] == ["get_weather"] and finish == ["tool_calls"]  # type: ignore[union-attr]
        arguments = calls[0].function.arguments  # type: ignore[union-attr]
        assert not any(c.choices[0].delta.content for c in pieces if c.choices)
    else:
        reply = await client.chat.completions.create(**kwargs, tool_choice=choice)
        message = reply.choices[0].message
        assert reply.choices[0].finish_reason == "tool_calls" and message.content is None
        assert message.tool_calls and message.tool_calls[0].function.name == "get_weather"  # type: ignore[union-attr]
        arguments = message.tool_calls[0].function.arguments  # type: ignore[union-attr]
    assert orjson.loads(arguments) == {"city": "Paris"}
    sent = ollama_upstream.requests[-1].body
    assert sent["format"] == WEATHER["function"]["parameters"] and "tools" not in sent


async def test_required_with_several_tools_through_the_proxy(
    shared_proxy: ProxyServer, ollama_upstream: FakeOllama
) -> None:
    client = openai.AsyncOpenAI(base_url=f"{shared_proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)
    reply = await client.chat.completions.create(
        model="llama3", messages=ASK, tools=[WEATHER, TIME], tool_choice="required"
    )  # type: ignore[list-item]
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and orjson.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert "anyOf" in ollama_upstream.requests[-1].body["format"]


class City(BaseModel):
    name: str
    population: int
    capital: bool


async def test_pydantic_ai_structured_output(shared_proxy: ProxyServer, ollama_upstream: FakeOllama) -> None:
    """pydantic-ai asks for its output through a forced tool call; an Ollama model now answers it."""
    model = OpenAIChatModel("llama3", provider=OpenAIProvider(base_url=f"{shared_proxy.url}/v1", api_key=MASTER_KEY))
    agent = Agent(model, output_type=City)
    result = await agent.run("Which is the largest city of France?")
    assert result.output == City(name="Paris", population=1, capital=True)
    sent = ollama_upstream.requests[-1].body
    assert sent["format"]["properties"].keys() == {"name", "population", "capital"}
    assert "tools" not in sent
