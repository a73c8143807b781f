"""Two proxies on one PostgreSQL and one Redis behave as one proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import redis

from proxyllm.db.tables import Key
from tests.conftest import ProxyServer, fresh_postgres_database, postgres_template, redis_url_or_skip, run_in_proxy
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.limits.conftest import away_from_minute_end, eventually, limits_config, new_key, start
from tests.limits.test_limits import post_chat

COST = Decimal("0.000011")  # one "hi" to gpt-fake: 1 prompt token x 0.000001 + 5 completion tokens x 0.000002


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    async with fresh_postgres_database(await postgres_template()) as url:
        yield url


@pytest.fixture(scope="module")
async def replicas(
    module_namespace: str,
    database: str,
    module_proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> tuple[ProxyServer, ProxyServer]:
    """Two replicas the module's cases share: each makes keys of its own, and every limit, budget and
    cache entry here is a key's. They stop before the database is dropped and the namespace emptied."""
    router = {"redis_url": redis_url_or_skip(), "redis_namespace": module_namespace}
    config = limits_config(openai_upstream, ollama_upstream, router=router)
    one = await start(module_proxy_factory, config, env={"DATABASE_URL": database})
    two = await start(module_proxy_factory, config, env={"DATABASE_URL": database})
    assert one.runtime.shared_state.shared and two.runtime.shared_state.shared
    return one, two


async def test_a_key_made_on_one_works_on_the_other_at_once(
    replicas: tuple[ProxyServer, ProxyServer], admin_for: Any
) -> None:
    one, two = replicas
    # The other replica looks the key up before it exists (and remembers that for 2 s)...
    assert (await post_chat(two, "sk-made-on-the-other-replica-1")).status_code == 401
    await new_key(admin_for(one), key="sk-made-on-the-other-replica-1")
    # ...and still accepts it at once: the creation was announced to every replica.
    started = time.monotonic()
    while (await post_chat(two, "sk-made-on-the-other-replica-1")).status_code != 200:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.02)


async def test_a_key_blocked_on_one_is_refused_on_the_other_within_a_second(
    replicas: tuple[ProxyServer, ProxyServer], admin_for: Any
) -> None:
    one, two = replicas
    key = await new_key(admin_for(one))
    assert (await post_chat(two, key["key"])).status_code == 200  # now cached on the other replica (10 s)
    assert (await admin_for(one).post("/key/block", json={"key": key["key"]})).status_code == 200
    started = time.monotonic()
    while (resp := await post_chat(two, key["key"])).status_code != 401:
        assert time.monotonic() - started < 1.0, "still accepted a second after the block"
        await asyncio.sleep(0.02)
    assert "blocked" in resp.json()["error"]["message"]
    assert (await admin_for(two).post("/key/unblock", json={"key": key["key"]})).status_code == 200
    started = time.monotonic()
    while (await post_chat(one, key["key"])).status_code != 200:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.02)


async def test_rate_limits_hold_across_replicas(
    replicas: tuple[ProxyServer, ProxyServer], admin_for: Any, openai_upstream: FakeOpenAI
) -> None:
    one, two = replicas
    key = await new_key(admin_for(one), rpm_limit=10)
    await away_from_minute_end()
    responses = await asyncio.gather(*(post_chat(one if i % 2 else two, key["key"]) for i in range(30)))
    assert sorted(r.status_code for r in responses) == [200] * 10 + [429] * 20

    parallel = await new_key(admin_for(two), max_parallel_requests=3)
    openai_upstream.delay = 0.5
    responses = await asyncio.gather(*(post_chat(one if i % 2 else two, parallel["key"]) for i in range(12)))
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 9


async def test_budgets_hold_across_replicas(
    replicas: tuple[ProxyServer, ProxyServer],
    admin_for: Any,
    openai_upstream: FakeOpenAI,
    redis_url: str,
    module_namespace: str,
) -> None:
    one, two = replicas
    budget = COST * 5 + COST / 2  # covers five requests and a half
    key = await new_key(admin_for(one), max_budget=str(budget))
    openai_upstream.delay = 0.05
    burst = await asyncio.gather(*(post_chat(one if i % 2 else two, key["key"], max_tokens=10) for i in range(40)))
    ok = sum(r.status_code == 200 for r in burst)
    refused = [r for r in burst if r.status_code != 200]
    assert all(r.status_code == 400 and r.json()["error"]["type"] == "budget_exceeded" for r in refused)
    # Each replica alone would admit five or six: together they admit what the one budget allows.
    assert 1 <= ok <= 6, ok
    assert await written_spend(replicas, key["token"]) == COST * ok

    # One at a time, alternating replicas, requests pass until the spend reaches the budget: six in all.
    client = redis.Redis.from_url(redis_url)
    reservations = f"{module_namespace}:budget:key:{key['token']}:0"
    later = 0
    for i in range(10):
        await eventually(lambda: int(client.hget(reservations, "r") or 0) == 0)  # the last one settled
        if (await post_chat(replicas[i % 2], key["key"])).status_code == 200:
            later += 1
    client.close()
    assert ok + later == 6
    spend = await written_spend(replicas, key["token"])
    assert spend == COST * 6 and spend <= budget + COST


async def written_spend(replicas: tuple[ProxyServer, ProxyServer], token: str) -> Decimal:
    """The key's spend in the database once both replicas wrote what they have."""

    async def read(proxy: ProxyServer) -> Decimal:
        await proxy.runtime.spend.flush()
        async with proxy.runtime.db.session() as session:
            key = await session.get(Key, token)
            assert key is not None
            return key.spend

    await asyncio.to_thread(run_in_proxy, replicas[1], replicas[1].runtime.spend.flush())
    result: Decimal = await asyncio.to_thread(run_in_proxy, replicas[0], read(replicas[0]))
    return result
