"""End to end: the shipped Railway config, Ollama on hugo reached only through the tailnet proxy.

A real HTTP forward proxy on 127.0.0.1 stands in for tailscaled: it alone can resolve ``hugo``
(mapped to the fake Ollama on loopback). The proxy serves chat, streaming, completions-style chat
and embeddings through it, while a hosted provider's fake is reached directly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from proxyllm.tailnet import TailnetCheck
from tests.conftest import ProxyServer
from tests.deploy.conftest import HUGO, railway_config_with
from tests.deploy.forward_proxy import VIA, ForwardProxy
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

MASTER_KEY = "sk-railway-master-test"


def with_tailnet_check(server: ProxyServer) -> ProxyServer:
    """Register the tailnet readiness check the way Runtime does (once wired in runtime.py)."""
    runtime = server.runtime
    if not any(isinstance(check, TailnetCheck) for check in runtime.readiness_checks):
        runtime.readiness_checks.append(TailnetCheck(runtime.env, lambda: runtime.router.deployments, runtime.http))
    return server


@pytest.fixture
async def railway_proxy(
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    tailnet_proxy: ForwardProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    database_url = f"sqlite:///{tmp_path}/proxyllm.db"
    # The config reads both from the environment (os.environ/...), as on Railway.
    monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("DATABASE_URL", database_url)
    status = tmp_path / "tailscale-status"
    status.write_text("state=running\nip=100.101.102.103\nhostname=railway-proxyllm\n")

    async def start(**env: str) -> ProxyServer:
        config = railway_config_with(
            {
                "model_name": "gpt-fake",
                "litellm_params": {
                    "model": "openai/gpt-fake",
                    "api_base": openai_upstream.api_base,
                    "api_key": "sk-upstream-secret",
                },
            }
        )
        full_env = {
            "DATABASE_URL": database_url,
            "LITELLM_SALT_KEY": "salt-for-the-tailnet-test-0123456789",  # the config has store_model_in_db
            "TAILNET_PROXY_URL": tailnet_proxy.url,
            "TAILSCALE_STATUS_FILE": str(status),
            **env,
        }
        server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env=full_env)
        return with_tailnet_check(server)

    return start


def client(server: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=MASTER_KEY, max_retries=0)


async def readiness(server: ProxyServer) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        return await http.get("/health/readiness")


async def test_ollama_on_hugo_goes_through_the_tailnet_and_hosted_goes_direct(
    railway_proxy: Any, tailnet_proxy: ForwardProxy, ollama_upstream: FakeOllama, openai_upstream: FakeOpenAI
) -> None:
    server = await railway_proxy()
    api = client(server)

    chat = await api.chat.completions.create(model="llama3", messages=[{"role": "user", "content": "hi"}])
    assert chat.choices[0].message.content == "Hello from the fake upstream"

    stream = await api.chat.completions.create(
        model="qwen3:8b",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
    assert text == "Hello from the fake upstream"
    assert usage is not None and usage.completion_tokens == 5

    generated = await api.chat.completions.create(model="llama3-generate", messages=[{"role": "user", "content": "hi"}])
    assert generated.choices[0].message.content == "Hello from the fake upstream"

    embeddings = await api.embeddings.create(model="nomic-embed-text", input=["one", "two"])
    assert [e.embedding for e in embeddings.data] == [[0.5, -0.25, 0.125]] * 2

    hosted = await api.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
    assert hosted.choices[0].message.content == "Hello from the fake upstream"

    # The tailnet proxy saw exactly the Ollama calls, addressed to hugo by name...
    assert [(s.method, s.target, s.path) for s in tailnet_proxy.seen] == [
        ("POST", HUGO, "/api/chat"),
        ("POST", HUGO, "/api/chat"),
        ("POST", HUGO, "/api/generate"),
        ("POST", HUGO, "/api/embed"),
    ]
    # ...Ollama got them only through it, and the hosted provider was reached directly.
    assert [r.path for r in ollama_upstream.requests] == ["/api/chat", "/api/chat", "/api/generate", "/api/embed"]
    assert all(r.headers.get("Via") == VIA for r in ollama_upstream.requests)
    assert [r.path for r in openai_upstream.requests] == ["/v1/chat/completions"]
    assert all("Via" not in r.headers for r in openai_upstream.requests)

    ready = await readiness(server)
    assert ready.status_code == 200
    assert ready.json()["tailnet"] == {"status": "ok", "required": False, "state": "Running", "upstreams": {HUGO: "ok"}}
    assert tailnet_proxy.seen[-1].path == "/"  # the readiness probe also went through the tailnet
    assert len(openai_upstream.requests) == 1


async def test_tailnet_down_fails_ollama_cleanly_while_hosted_models_and_readiness_stay_up(
    railway_proxy: Any, tailnet_proxy: ForwardProxy, ollama_upstream: FakeOllama
) -> None:
    tailnet_proxy.hosts.clear()  # hugo unreachable from the tailnet
    server = await railway_proxy()
    api = client(server)

    with pytest.raises(openai.APIStatusError) as failed:
        await api.chat.completions.create(model="llama3", messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 502
    body = failed.value.body
    assert isinstance(body, dict) and body.get("message")
    assert ollama_upstream.requests == []

    hosted = await api.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
    assert hosted.choices[0].message.content == "Hello from the fake upstream"

    ready = await readiness(server)
    assert ready.status_code == 200  # the tailnet is reported, not required
    report = ready.json()
    assert report["status"] == "healthy"
    assert report["tailnet"]["status"] == "error"
    assert report["tailnet"]["upstreams"] == {HUGO: "HTTP 502 through the tailnet proxy"}


async def test_tailnet_required_makes_readiness_fail_when_it_is_down(
    railway_proxy: Any, tailnet_proxy: ForwardProxy
) -> None:
    tailnet_proxy.hosts.clear()
    server = await railway_proxy(TAILNET_REQUIRED="1")
    ready = await readiness(server)
    assert ready.status_code == 503
    assert ready.json()["tailnet"]["required"] is True
