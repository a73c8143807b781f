"""Limits held in Redis (one Lua script per admission), and what happens when Redis is away."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis

from tests.fakes.base import Action, free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.tcp_forwarder import TcpForwarder
from tests.limits.conftest import away_from_minute_end, eventually, limits_config, new_key, start
from tests.limits.test_limits import limiter_of, post_chat


def redis_config(openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, url: str, namespace: str) -> str:
    return limits_config(openai_upstream, ollama_upstream, router={"redis_url": url, "redis_namespace": namespace})


async def test_limits_in_redis_are_exact_and_leave_no_slot_behind(
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    admin_for: Any,
    redis_url: str,
    namespace: str,
) -> None:
    proxy = await start(proxy_factory, redis_config(openai_upstream, ollama_upstream, redis_url, namespace))
    assert proxy.runtime.shared_state.shared
    admin = admin_for(proxy)
    key = await new_key(admin, rpm_limit=5)
    await away_from_minute_end()
    responses = await asyncio.gather(*(post_chat(proxy, key["key"]) for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 15
    assert not limiter_of(proxy).limiter.local.counters  # nothing was counted in process
    client = redis.Redis.from_url(redis_url)
    windows = [k for k in client.scan_iter(f"{namespace}:rl:key:{key['token']}:*") if not k.endswith(b":p")]
    assert len(windows) == 1 and int(client.hget(windows[0], "r") or 0) == 5

    parallel = await new_key(admin, max_parallel_requests=2)
    slots = f"{namespace}:rl:key:{parallel['token']}:p"
    openai_upstream.delay = 0.5
    responses = await asyncio.gather(*(post_chat(proxy, parallel["key"]) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 2 + [429] * 6
    await eventually(lambda: client.zcard(slots) == 0)

    openai_upstream.delay = 0.0
    openai_upstream.push(Action(delay=5))
    sent = len(openai_upstream.requests)
    task = asyncio.create_task(post_chat(proxy, parallel["key"]))
    await eventually(lambda: len(openai_upstream.requests) > sent)
    assert client.zcard(slots) == 1
    task.cancel()  # the client disconnects: its slot is freed in Redis
    await eventually(lambda: client.zcard(slots) == 0)
    assert (await post_chat(proxy, parallel["key"])).status_code == 200
    client.close()


async def test_unreachable_redis_degrades_to_per_process_limits(
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    admin_for: Any,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="proxyllm")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    proxy = await start(proxy_factory, redis_config(openai_upstream, ollama_upstream, dead, namespace))
    key = await new_key(admin_for(proxy), rpm_limit=3)
    await away_from_minute_end()
    statuses = [(await post_chat(proxy, key["key"])).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert "rate limits and budgets hold per process" in caplog.text


async def test_redis_outage_mid_run_keeps_serving_with_local_limits(
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    admin_for: Any,
    redis_url: str,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="proxyllm")
    target = redis.connection.parse_url(redis_url)
    forwarder = TcpForwarder(target.get("host", "127.0.0.1"), int(target.get("port", 6379)))
    await forwarder.start()
    url = f"redis://127.0.0.1:{forwarder.port}/{target.get('db', 0)}"
    proxy = await start(proxy_factory, redis_config(openai_upstream, ollama_upstream, url, namespace))
    key = await new_key(admin_for(proxy), rpm_limit=4)
    await away_from_minute_end(15)
    assert [(await post_chat(proxy, key["key"])).status_code for _ in range(2)] == [200, 200]
    await forwarder.cut()
    statuses = [(await post_chat(proxy, key["key"])).status_code for _ in range(6)]
    # Redis had counted two; this process alone now counts from zero: four more pass, then refusals.
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert "rate limits and budgets hold per process" in caplog.text
    assert not proxy.runtime.shared_state.shared


async def test_limits_and_budget_cost_one_round_trip_before_the_upstream(
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    admin_for: Any,
    redis_url: str,
    namespace: str,
) -> None:
    proxy = await start(proxy_factory, redis_config(openai_upstream, ollama_upstream, redis_url, namespace))
    admin = admin_for(proxy)
    await admin.post("/team/new", json={"team_id": "t-one-trip", "max_budget": 10, "rpm_limit": 100})
    key = await new_key(admin, team_id="t-one-trip", rpm_limit=2, max_parallel_requests=5, max_budget=1)
    scripts = proxy.runtime.scripts
    limiter = limiter_of(proxy).limiter
    calls: list[str] = []
    original = scripts.run

    async def counting(script: Any, keys: Any, args: Any, local: Any) -> Any:
        calls.append(
            {id(limiter._admit): "admit", id(limiter._release): "release", id(limiter._settle): "settle"}.get(
                id(script), "other"
            )
        )
        return await original(script, keys, args, local)

    original_many = scripts.run_many

    async def counting_many(script: Any, batch: Any) -> Any:  # settlements are gathered into one pipeline
        calls.extend("settle" if script is limiter._settle else "other" for _ in batch)
        return await original_many(script, batch)

    scripts.run = counting  # type: ignore[method-assign]
    scripts.run_many = counting_many  # type: ignore[method-assign]
    await away_from_minute_end()
    ok = await post_chat(proxy, key["key"])
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining-requests"] == "1"
    await eventually(lambda: len(calls) == 3)
    assert sorted(calls) == ["admit", "release", "settle"] and calls[0] == "admit"  # one before the upstream
    client = redis.Redis.from_url(redis_url)
    budgets = sorted(k.decode() for k in client.scan_iter(f"{namespace}:budget:*"))
    assert budgets == [f"{namespace}:budget:key:{key['token']}:0", f"{namespace}:budget:team:t-one-trip:0"]
    assert int(client.hget(budgets[0], "s")) == 11_000 and int(client.hget(budgets[0], "r")) == 0  # nano-dollars
    client.close()

    assert (await post_chat(proxy, key["key"])).status_code == 200
    refused = await post_chat(proxy, key["key"])  # limits are checked before budgets, in the same script
    assert refused.status_code == 429 and "rpm_limit is 2" in refused.json()["error"]["message"]
