"""/health/readiness means the proxy can serve: 503, with the reason, while no model is served."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.fakes.base import free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI


async def readiness(proxy: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
        return await http.get("/health/readiness")


async def test_no_model_is_not_ready_and_says_why(proxy_factory: Any) -> None:
    proxy = await asyncio.to_thread(proxy_factory, "model_list: []\n")
    resp = await readiness(proxy)
    assert resp.status_code == 503
    report = resp.json()
    assert report["status"] == "unhealthy" and report["models"] == 0
    served = report["models_served"]
    assert served["status"] == "error" and served["count"] == 0
    assert "no model is served" in served["error"] and "allow_no_models" in served["error"]
    assert report["database"]["status"] == "ok"  # the rest is fine: the reason is the models


@pytest.mark.parametrize(
    ("config", "env"),
    [
        ("model_list: []\ngeneral_settings: {allow_no_models: true}\n", {}),
        ("model_list: []\n", {"PROXYLLM_ALLOW_NO_MODELS": "true"}),
    ],
)
async def test_models_added_at_run_time_can_be_allowed(proxy_factory: Any, config: str, env: dict[str, str]) -> None:
    proxy = await asyncio.to_thread(proxy_factory, config, env=env)
    resp = await readiness(proxy)
    assert resp.status_code == 200
    assert resp.json()["models_served"] == {"status": "ok", "count": 0, "required": False}


async def test_a_configured_model_is_ready(proxy_factory: Any, openai_upstream: FakeOpenAI) -> None:
    config = f"""
model_list:
  - model_name: gpt-fake
    litellm_params: {{model: openai/gpt-fake, api_base: {openai_upstream.api_base}, api_key: k}}
"""
    proxy = await asyncio.to_thread(proxy_factory, config)
    resp = await readiness(proxy)
    assert resp.status_code == 200 and resp.json()["models_served"]["count"] == 1


async def test_a_wildcard_entry_counts_as_serving(proxy_factory: Any, openai_upstream: FakeOpenAI) -> None:
    config = f"""
model_list:
  - model_name: "openai/*"
    litellm_params: {{model: "openai/*", api_base: {openai_upstream.api_base}, api_key: k}}
"""
    proxy = await asyncio.to_thread(proxy_factory, config)
    assert (await readiness(proxy)).status_code == 200


async def test_ollama_discovery_is_ready_once_ollama_lists_models(
    proxy_factory: Any, ollama_upstream: FakeOllama
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    proxy = await asyncio.to_thread(proxy_factory, "", env={"OLLAMA_API_BASE": unreachable}, discover_ollama=True)
    resp = await readiness(proxy)
    assert resp.status_code == 503
    assert f"the Ollama at {unreachable} has listed none yet" in resp.json()["models_served"]["error"]

    found = await asyncio.to_thread(
        proxy_factory, "", env={"OLLAMA_API_BASE": ollama_upstream.url}, discover_ollama=True
    )
    resp = await readiness(found)
    assert resp.status_code == 200 and resp.json()["models_served"]["count"] >= 1
