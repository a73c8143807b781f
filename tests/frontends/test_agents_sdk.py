"""The OpenAI Agents SDK's default model (the Responses API) running one function tool through the proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

agents = pytest.importorskip("agents", reason="openai-agents is in the dev extras")


@pytest.mark.parametrize("model", ["llama3", "gpt-fake"])
async def test_agent_runs_a_tool(
    proxy: ProxyServer, model: str, ollama_upstream: FakeOllama, openai_upstream: FakeOpenAI
) -> None:
    calls: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    agent = agents.Agent(
        name="weather",
        instructions="Answer with the weather.",
        tools=[get_weather],
        model=model,  # a name: the SDK's default model provider, which speaks the Responses API
    )
    agents.set_default_openai_client(client, use_for_tracing=False)
    agents.set_default_openai_api("responses")
    agents.set_tracing_disabled(True)
    result: Any = await asyncio.wait_for(agents.Runner.run(agent, "What is the weather in Paris?"), 60)
    assert calls == ["Paris"]
    assert result.final_output == "Hello from the fake upstream"
    upstream = ollama_upstream if model == "llama3" else openai_upstream
    last = upstream.requests[-1].body["messages"]
    assert last[-1]["role"] == "tool" and last[-1]["content"] == "sunny in Paris"
