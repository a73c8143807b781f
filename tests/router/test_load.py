"""Under load, one deployment failing half the time costs the clients nothing."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import openai

from tests.router.conftest import HI, client, config, deployment, start


async def one(c: openai.AsyncOpenAI, stream: bool) -> tuple[float, int]:
    started = time.perf_counter()
    if stream:
        raw = await c.chat.completions.with_raw_response.create(model="m", messages=HI, stream=True)
        text = "".join([ch.choices[0].delta.content or "" async for ch in raw.parse() if ch.choices])
    else:
        raw = await c.chat.completions.with_raw_response.create(model="m", messages=HI)
        text = raw.parse().choices[0].message.content or ""
    assert text == "Hello from the fake upstream"
    return time.perf_counter() - started, int(raw.headers["x-litellm-attempted-retries"])


async def test_200_concurrent_requests_with_one_deployment_failing_half_the_time(
    fakes: Any, proxy_factory: Any
) -> None:
    flaky, a, b = await fakes(3)
    flaky.failure_rate = 0.5
    text = config(
        [deployment("m", flaky), deployment("m", a), deployment("m", b)],
        router={"num_retries": 2, "allowed_fails": 3, "cooldown_time": 1},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy, timeout=60)
    started = time.perf_counter()
    results = await asyncio.gather(*(one(c, stream=i % 4 == 0) for i in range(200)), return_exceptions=True)
    wall = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    ok = [r for r in results if not isinstance(r, BaseException)]
    latencies = sorted(t for t, _ in ok)
    p50, p95 = statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.95)] * 1000
    retries = sum(n for _, n in ok)
    print(
        f"\n200 concurrent (50 streamed), 1 of 3 deployments failing 50%: client failures {len(failures)}; "
        f"upstream requests flaky/a/b {len(flaky.requests)}/{len(a.requests)}/{len(b.requests)}; "
        f"upstream failures, all retried elsewhere {retries}; wall {wall:.2f}s; latency p50 {p50:.0f}ms "
        f"p95 {p95:.0f}ms max {latencies[-1] * 1000:.0f}ms"
    )
    assert not failures, failures[:3]
    assert len(ok) == 200
    assert retries >= 10, "the flaky deployment did fail: every failure was absorbed by a retry"
    assert all(d.in_flight == 0 for d in proxy.runtime.router.deployments)
