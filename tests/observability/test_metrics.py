"""GET /metrics, parsed with prometheus-client's own parser, after known traffic; and several workers."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.base import free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.limits.conftest import HI, eventually, limits_config, new_key, start

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> str:
    resp = await http.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


async def test_metrics_after_known_traffic(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, admin_for: Any
) -> None:
    litellm = {"cache": True, "cache_params": {"type": "local"}}
    router = {"allowed_fails": 1, "cooldown_time": 60}
    proxy: ProxyServer = await start(
        proxy_factory, limits_config(openai_upstream, ollama_upstream, litellm=litellm, router=router)
    )
    key = await new_key(admin_for(proxy), rpm_limit=1)
    async with httpx.AsyncClient(base_url=proxy.url, headers=AUTH, timeout=30) as http:
        before = await scrape(http)
        assert value(before, "proxyllm_requests_total", model="gpt-fake", status="200") == 0
        assert value(before, "proxyllm_deployment_state", model="gpt-fake", deployment=dep_id(proxy, "gpt-fake")) == 0
        for _ in range(3):  # one miss, two cache hits
            assert (await http.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})).is_success
        body = {"model": "gpt-fake", "messages": [{"role": "user", "content": "stream me"}], "stream": True}
        async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert b"[DONE]" in b"".join([c async for c in resp.aiter_bytes()])
        assert (await http.post("/v1/chat/completions", json={"model": "nope", "messages": HI})).status_code == 404
        limited = {"authorization": f"Bearer {key['key']}"}
        other = {"model": "gpt-fake", "messages": [{"role": "user", "content": "limited"}]}
        assert (await http.post("/v1/chat/completions", json=other, headers=limited)).status_code == 200
        assert (await http.post("/v1/chat/completions", json=other, headers=limited)).status_code == 429
        openai_upstream.fail(500, "boom")
        failing = {"model": "gpt-fake", "messages": [{"role": "user", "content": "fail"}]}
        assert (await http.post("/v1/chat/completions", json=failing)).status_code == 500

        text = await scrape(http)
        deadline = time.monotonic() + 5
        while value(text, "proxyllm_requests_total", model="gpt-fake", status="500") < 1:  # counted after the response
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
            text = await scrape(http)
    ok = value(text, "proxyllm_requests_total", model="gpt-fake", status="200")
    assert ok == 5  # 3 plain (1 miss + 2 hits), 1 stream, 1 limited key's first
    assert value(text, "proxyllm_requests_total", model="gpt-fake", status="429") == 1
    assert value(text, "proxyllm_requests_total", model="gpt-fake", status="500") == 1
    assert value(text, "proxyllm_requests_total", model="other", status="404") == 1  # unknown names are not labels
    assert value(text, "proxyllm_request_failures_total", model="gpt-fake", error="rate_limit") == 1
    assert value(text, "proxyllm_request_failures_total", model="gpt-fake", error="upstream") == 1
    assert value(text, "proxyllm_rate_limit_rejections_total", scope="key", limit="rpm_limit") == 1
    assert value(text, "proxyllm_cache_hits_total", model="gpt-fake") == 2
    assert value(text, "proxyllm_cache_misses_total", model="gpt-fake") == 4  # plain, stream, limited, failing
    assert value(text, "proxyllm_request_duration_seconds_count", model="gpt-fake") == 7
    assert value(text, "proxyllm_time_to_first_token_seconds_count", model="gpt-fake") == 1
    assert value(text, "proxyllm_overhead_duration_seconds_count", model="gpt-fake") == 4  # calls that reached it
    # The fake counts prompt words: "hi" (plain), "stream me", "limited"; 5 completion tokens each.
    assert value(text, "proxyllm_input_tokens_total", model="gpt-fake") == 1 + 2 + 1
    assert value(text, "proxyllm_output_tokens_total", model="gpt-fake") == 5 * 3
    spend = value(text, "proxyllm_spend_usd_total", model="gpt-fake")
    assert spend == pytest.approx(0.000011 * 2 + 0.000012, rel=1e-9)
    deployment = dep_id(proxy, "gpt-fake")
    assert value(text, "proxyllm_deployment_state", model="gpt-fake", deployment=deployment) == 1  # cooling
    assert value(text, "proxyllm_deployment_state", model="llama3", deployment=dep_id(proxy, "llama3")) == 0
    assert ("proxyllm_spend_queue_rows", frozenset()) in samples(text)
    # The same facts under the OpenTelemetry GenAI names.
    genai = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-fake"}
    assert value(text, "gen_ai_server_request_duration_seconds_count", **genai) == 7
    assert value(text, "gen_ai_server_time_to_first_token_seconds_count", **genai) == 1
    assert value(text, "gen_ai_client_token_usage_count", **genai, gen_ai_token_type="input") == 3
    assert value(text, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="input") == 1 + 2 + 1
    assert value(text, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="output") == 5 * 3


def dep_id(proxy: ProxyServer, group: str) -> str:
    return next(d.id for d in proxy.runtime.router.deployments if d.model_name == group)


async def test_spend_queue_gauge(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> None:
    proxy: ProxyServer = await start(proxy_factory, limits_config(openai_upstream, ollama_upstream))
    proxy.runtime.spend._task.cancel()  # type: ignore[union-attr]  # keep rows queued: no background flush
    async with httpx.AsyncClient(base_url=proxy.url, headers=AUTH, timeout=30) as http:
        for _ in range(3):
            await http.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
        await eventually(lambda: proxy.runtime.spend.queued_rows >= 3)
        assert value(await scrape(http), "proxyllm_spend_queue_rows") == proxy.runtime.spend.queued_rows


async def test_metrics_can_require_a_key(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    config = limits_config(openai_upstream, ollama_upstream, litellm={"require_auth_for_metrics_endpoint": True})
    proxy: ProxyServer = await start(proxy_factory, config)
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers=AUTH)).status_code == 200


@pytest.mark.slow
async def test_several_workers_share_their_metrics(tmp_path: Path, openai_upstream: FakeOpenAI) -> None:
    """Two worker processes behind one port (PROMETHEUS_MULTIPROC_DIR): any scrape adds up both."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-fake\n"
        "    litellm_params:\n"
        f"      model: openai/gpt-fake\n      api_base: {openai_upstream.api_base}\n      api_key: sk-upstream\n"
        f"general_settings:\n  master_key: {MASTER_KEY}\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "DATABASE_URL": f"sqlite:///{tmp_path}/proxy.db",
        "LOG_LEVEL": "warning",
    }
    for name in ("REDIS_URL", "REDIS_HOST", "PROXYLLM_CONFIG", "LITELLM_MASTER_KEY"):
        env.pop(name, None)
    command = [sys.executable, "-m", "proxyllm.cli", "--config", str(config), "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        *command, "--host", "127.0.0.1", "--num_workers", "2", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as http:
            while True:
                try:
                    if (await http.get("/health/liveliness", timeout=1)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.returncode is None, "the proxy exited"
                assert time.monotonic() < deadline, "the workers did not start"
                await asyncio.sleep(0.2)

            def writers() -> set[str]:
                return {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.iterdir() if p.name.startswith("counter_")}

            sent = 0
            while sent < 400 and (sent < 20 or len(writers()) < 2):
                # A new connection each, concurrently: the kernel spreads them over the workers.
                async def one() -> None:
                    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=30) as client:
                        resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                        assert resp.is_success, resp.text

                await asyncio.gather(*(one() for _ in range(10)))
                sent += 10
            assert len(writers()) == 2, "both workers served requests"
            for _ in range(4):  # whichever worker answers the scrape reports everyone's counts
                text = (await http.get("/metrics")).text
                assert value(text, "proxyllm_requests_total", model="gpt-fake", status="200") == sent
                assert value(text, "proxyllm_request_duration_seconds_count", model="gpt-fake") == sent
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
