"""Response headers, /health with each deployment's routing state, and background health checks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.conftest import MASTER_KEY
from tests.router.conftest import chat, client, config, dep_id, deployment, eventually, fresh_minute, start, status


async def test_response_headers(fakes: Any, proxy_factory: Any) -> None:
    (slow,) = await fakes(1)
    slow.delay = 0.3
    proxy = await start(proxy_factory, config([deployment("m", slow)]))
    c = client(proxy)
    started = time.perf_counter()
    raw = await chat(c)
    total_ms = (time.perf_counter() - started) * 1000
    headers = raw.headers
    assert headers["x-litellm-model-id"] == dep_id(proxy, slow)
    assert headers["x-litellm-model-group"] == "m"
    assert headers["x-litellm-attempted-retries"] == "0"
    assert headers["x-litellm-attempted-fallbacks"] == "0"
    overhead = float(headers["x-litellm-overhead-duration-ms"])
    assert 0 <= overhead < 100 < 300 <= total_ms, f"300ms upstream wait is not overhead ({overhead}ms)"

    stream = await c.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert float(stream.headers["x-litellm-overhead-duration-ms"]) < 100
    async for _chunk in stream.parse():
        pass


async def test_overhead_counts_retry_waits_as_waiting(fakes: Any, proxy_factory: Any) -> None:
    (only,) = await fakes(1)
    only.fail(429, "slow down", retry_after="0.5")
    proxy = await start(proxy_factory, config([deployment("m", only)]))
    raw = await chat(client(proxy))
    assert raw.headers["x-litellm-attempted-retries"] == "1"
    assert float(raw.headers["x-litellm-overhead-duration-ms"]) < 100


async def test_health_reports_each_deployments_state(fakes: Any, proxy_factory: Any) -> None:
    bad, good = await fakes(2)
    bad.failure_rate = 1.0
    text = config([deployment("m", bad), deployment("m", good)], router={"allowed_fails": 1, "cooldown_time": 30})
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    await fresh_minute()
    for _ in range(6):
        await chat(c)
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as http:
        report = (await http.get("/health")).json()
    entries = {e["model_id"]: e for e in report["healthy_endpoints"] + report["unhealthy_endpoints"]}
    cooling = entries[dep_id(proxy, bad)]
    assert cooling["state"] == "cooldown"
    assert cooling["cooldown"]["reason"] == "failing" and 25 < cooling["cooldown"]["remaining_seconds"] <= 30
    serving = entries[dep_id(proxy, good)]
    assert serving["state"] == "available" and serving["cooldown"] is None
    assert serving["requests_this_minute"] >= 6 and serving["tokens_this_minute"] > 0
    assert serving["latency_ms"] is not None and serving["in_flight"] == 0
    assert "sk-upstream" not in str(report)


async def test_background_health_checks_feed_cooldowns(fakes: Any, proxy_factory: Any) -> None:
    missing, fine = await fakes(2)
    missing.models = ("something-else",)  # the upstream no longer lists the model: the probe fails
    text = config(
        [deployment("m", missing), deployment("m", fine)],
        router={"cooldown_time": 1},
        general={"background_health_checks": True, "health_check_interval": 1},
    )
    proxy = await start(proxy_factory, text)
    await eventually(lambda: status(proxy, missing)["state"] == "cooldown", timeout=5)
    assert status(proxy, missing)["cooldown"]["reason"] == "health_check"
    c = client(proxy)
    await asyncio.gather(*(chat(c) for _ in range(10)))
    assert not missing.requests, "a deployment failing its health check gets no traffic"
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as http:
        report = (await http.get("/health")).json()
    assert [e["model_id"] for e in report["unhealthy_endpoints"]] == [dep_id(proxy, missing)]
    assert "not list" in report["unhealthy_endpoints"][0]["error"]

    missing.models = ("gpt-fake",)  # fixed: the next probe brings it back
    await eventually(lambda: status(proxy, missing)["state"] == "available", timeout=5)
    await asyncio.gather(*(chat(c) for _ in range(20)))
    assert missing.requests


async def test_readiness_reports_shared_state(fakes: Any, proxy_factory: Any) -> None:
    (only,) = await fakes(1)
    proxy = await start(proxy_factory, config([deployment("m", only)]))
    async with httpx.AsyncClient(base_url=proxy.url) as http:
        report = (await http.get("/health/readiness")).json()
    assert report["shared_state"] == {"status": "ok", "backend": "memory", "required": False}
