"""Claude Code's recorded request on ``/v1/messages`` for OpenAI and Ollama models: translated, with
thinking sent only where the model can think and what the upstream cannot honour left out."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from aiohttp import web

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.ollama_upstream import STAMP, FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.frontends.test_claude_code_requests import FIRST, RECORDED

HEADERS = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01", "anthropic-beta": RECORDED[0]["anthropic-beta"]}
ANTHROPIC_ONLY = ("thinking", "context_management", "output_config", "cache_control", "metadata", "input_examples")


@pytest.fixture(scope="module")
async def proxy(module_proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    """One proxy for the module: every case is a request and its translation."""
    text = f"""
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-fake, api_base: "{openai_upstream.api_base}", api_key: sk-upstream}}
  - model_name: thinker
    litellm_params: {{model: openai/gpt-fake, api_base: "{openai_upstream.api_base}", api_key: sk-upstream}}
    model_info: {{supports_reasoning: true}}
  - model_name: llama3
    litellm_params: {{model: ollama_chat/llama3, api_base: "{ollama_upstream.url}"}}
  - model_name: llama-small
    litellm_params: {{model: ollama_chat/llama3, api_base: "{ollama_upstream.url}"}}
    model_info: {{max_output_tokens: 1000}}
general_settings:
  master_key: {MASTER_KEY}
"""
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text)
    return server


def claude_code_request(model: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(FIRST)
    body["tools"][0]["input_examples"] = [{"description": "x", "prompt": "y", "subagent_type": "z"}]
    body["tools"].append({"type": "web_search_20250305", "name": "web_search", "max_uses": 5})
    return {**body, "model": model, **changes}


def events(raw: bytes) -> list[str]:
    return [e.split(b"\n")[0].removeprefix(b"event: ").decode() for e in raw.split(b"\n\n") if e]


@pytest.mark.parametrize(("model", "effort"), [("gpt", None), ("thinker", "high")])
async def test_openai_models_get_a_translated_request(
    proxy: ProxyServer, openai_upstream: FakeOpenAI, model: str, effort: str | None
) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post("/v1/messages?beta=true", json=claude_code_request(model), headers=HEADERS)
    assert resp.status_code == 200, resp.text
    names = events(resp.content)
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    sent = openai_upstream.requests[-1].body
    assert sent.get("reasoning_effort") == effort
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "system"]
    assert "web_search" not in [t["function"]["name"] for t in sent["tools"]], "server tools are left out"
    assert len(sent["tools"]) == len(FIRST["tools"])
    text = orjson.dumps(sent).decode()
    for field in ANTHROPIC_ONLY:
        assert f'"{field}"' not in text, field


@pytest.mark.parametrize(
    ("thinking", "think"),
    [({"type": "adaptive"}, None), ({"type": "enabled", "budget_tokens": 4000}, True), ({"type": "disabled"}, None)],
)
async def test_ollama_thinks_only_when_asked_explicitly_or_configured(
    proxy: ProxyServer, ollama_upstream: FakeOllama, thinking: dict[str, Any], think: bool | None
) -> None:
    body = claude_code_request("llama3", thinking=thinking, stream=False)
    if thinking["type"] == "disabled":
        body.pop("output_config")
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post("/v1/messages", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    assert resp.json()["type"] == "message"
    sent = ollama_upstream.requests[-1].body
    assert sent.get("think") is think
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "system"]


async def test_count_tokens_for_a_non_anthropic_model_is_an_estimate(proxy: ProxyServer) -> None:
    body = {k: v for k, v in claude_code_request("llama3").items() if k not in ("max_tokens", "stream")}
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post("/v1/messages/count_tokens?beta=true", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    assert resp.json()["input_tokens"] > 1000 and resp.headers["x-proxyllm-token-count"] == "estimate"


async def test_max_tokens_above_the_models_limit_is_the_limit(proxy: ProxyServer, ollama_upstream: FakeOllama) -> None:
    body = claude_code_request("llama-small", stream=False)
    assert body["max_tokens"] == 32000
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post("/v1/messages", json=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    assert ollama_upstream.requests[-1].body["options"]["num_predict"] == 1000


class ThinkingOllama(FakeOllama):
    """/api/chat of a thinking model: with ``think``, the reasoning comes first, in ``message.thinking``."""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        final = {**self._final(body, 3), "message": {"role": "assistant", "content": ""}}
        thinking = (
            {"role": "assistant", "content": "", "thinking": "Two and two make four."} if body.get("think") else None
        )
        answer = {"role": "assistant", "content": "Four."}
        if not body.get("stream", True):
            return web.json_response(
                {**final, "message": {**answer, **({"thinking": thinking["thinking"]} if thinking else {})}}
            )
        lines = [
            {"model": body["model"], "created_at": STAMP, "done": False, "message": m} for m in (thinking, answer) if m
        ]
        raw = [orjson.dumps(line) + b"\n" for line in [*lines, final]]
        return await self.stream_events(request, action, raw, "application/x-ndjson")


@pytest.mark.parametrize("stream", [False, True])
async def test_ollama_thinking_comes_back_as_thinking_blocks(proxy_factory: Any, stream: bool) -> None:
    fake = ThinkingOllama()
    await fake.start()
    try:
        text = f"""
model_list:
  - model_name: qwen3
    litellm_params: {{model: ollama_chat/qwen3, api_base: "{fake.url}"}}
    model_info: {{supports_reasoning: true}}
general_settings:
  master_key: {MASTER_KEY}
"""
        proxy: ProxyServer = await asyncio.to_thread(proxy_factory, text)
        client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
        request: dict[str, Any] = {
            "model": "qwen3",
            "max_tokens": 1000,
            "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": "2+2?"}],
        }
        if stream:
            async with client.messages.stream(**request) as events:
                message = await events.get_final_message()
        else:
            message = await client.messages.create(**request)
        await client.close()
    finally:
        await fake.stop()
    assert fake.requests[-1].body["think"] is True
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Two and two make four."  # type: ignore[union-attr]
    assert message.content[1].text == "Four."  # type: ignore[union-attr]
