"""Shared state: the same semantics in memory and in Redis; replicas sharing cooldowns and usage; outages."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import openai
import pytest

from proxyllm.state import MarkEvent, MemoryState, SharedState, redis_url
from proxyllm.state.redis import RedisState, redacted
from tests.conftest import redis_url_or_skip
from tests.fakes.base import free_port
from tests.router.conftest import (
    chat,
    client,
    config,
    deployment,
    eventually,
    fresh_minute,
    start,
    status,
)


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[SharedState]:
    made: SharedState = (
        MemoryState() if request.param == "memory" else RedisState(redis_url_or_skip(), namespace=namespace)
    )
    await made.start()
    yield made
    await made.close()


async def let_pass(state: SharedState, seconds: float, clock: ModuleType) -> None:
    """Time passes: the proxy's clock moves for the in-process state; Redis expires on its own clock."""
    if isinstance(state, MemoryState):
        clock.advance(seconds)
    else:
        await asyncio.sleep(seconds)


async def test_counters_add_up_and_expire(state: SharedState, clock: ModuleType) -> None:
    assert await state.incr("a", 2, ttl=0.3) == 2
    assert await state.incr("a", 3, ttl=0.3) == 5
    assert await state.incr_many({"a": 0, "b": 4}, ttl=0.3) == {"a": 5, "b": 4}
    await let_pass(state, 0.4, clock)
    assert await state.incr_many({"a": 0, "b": 1}, ttl=10) == {"a": 0, "b": 1}
    await state.delete("b")
    assert await state.incr("b", 0, ttl=10) == 0


async def test_marks_expire_and_are_announced(state: SharedState, clock: ModuleType) -> None:
    await state.mark("cooldown", "dep-1", 0.3, "failing")
    await state.mark("cooldown", "dep-2", 5, "rate_limited")
    marks = await state.marks("cooldown")
    assert set(marks) == {"dep-1", "dep-2"}
    assert 0 < marks["dep-1"][0] <= 0.3 and marks["dep-2"][1] == "rate_limited"
    await let_pass(state, 0.35, clock)
    assert set(await state.marks("cooldown")) == {"dep-2"}
    await state.unmark("cooldown", "dep-2")
    assert await state.marks("cooldown") == {}


async def test_announcements_reach_other_replicas(namespace: str) -> None:
    url = redis_url_or_skip()
    one, two = RedisState(url, namespace=namespace), RedisState(url, namespace=namespace)
    seen: list[MarkEvent] = []
    two.subscribe("cooldown", seen.append)
    await one.start()
    await two.start()
    try:
        await asyncio.sleep(0.2)  # subscribed
        await one.mark("cooldown", "dep-9", 2.5, "failing")
        await eventually(lambda: len(seen) == 1)
        assert seen[0].member == "dep-9" and seen[0].value == "failing" and seen[0].seconds == 2.5
        await one.unmark("cooldown", "dep-9")
        await eventually(lambda: len(seen) == 2)
        assert seen[1].seconds == 0
    finally:
        await one.close()
        await two.close()


def test_redis_url_from_settings_and_environment() -> None:
    assert redis_url(env={}) is None
    assert redis_url(env={"REDIS_URL": "redis://r:6379/1"}) == "redis://r:6379/1"
    assert redis_url(host="cache", port=6380, password="p@ss/word", env={"REDIS_URL": "x"}) == (
        "redis://:p%40ss%2Fword@cache:6380/0"
    )
    assert redacted("redis://:secret@cache:6380/2") == "cache:6380/2"


def two_deployments(bad: Any, good: Any) -> list[dict[str, Any]]:
    return [
        deployment("m", bad, input_cost_per_token=0),
        deployment("m", good, input_cost_per_token=0.1),
    ]


async def test_two_proxies_share_cooldowns(fakes: Any, proxy_factory: Any, redis_url: str, namespace: str) -> None:
    bad, good = await fakes(2)
    bad.failure_rate = 1.0
    text = config(
        two_deployments(bad, good),
        router={
            "routing_strategy": "cost-based-routing",
            "allowed_fails": 1,
            "cooldown_time": 10,
            "redis_namespace": namespace,
        },
    )
    env = {"REDIS_URL": redis_url}
    one = await start(proxy_factory, text, env=env)
    two = await start(proxy_factory, text, env=env)
    await chat(client(one))  # fails on the cheap one, cools it, served by the other
    assert len(bad.requests) == 1 and status(one, bad)["state"] == "cooldown"
    await eventually(lambda: status(two, bad)["state"] == "cooldown", timeout=2)
    for _ in range(10):
        await chat(client(two))
    assert len(bad.requests) == 1, "the second proxy never tried the deployment the first one cooled"

    late = await start(proxy_factory, text, env=env)  # a replica started during the cooldown learns it at start
    assert status(late, bad)["state"] == "cooldown"
    assert late.runtime.shared_state.shared


async def test_failures_add_up_across_proxies(fakes: Any, proxy_factory: Any, redis_url: str, namespace: str) -> None:
    bad, good = await fakes(2)
    bad.failure_rate = 1.0
    text = config(
        two_deployments(bad, good),
        router={
            "routing_strategy": "cost-based-routing",
            "allowed_fails": 2,
            "cooldown_time": 5,
            "redis_namespace": namespace,
        },
    )
    env = {"REDIS_URL": redis_url}
    one = await start(proxy_factory, text, env=env)
    two = await start(proxy_factory, text, env=env)
    await chat(client(one))
    await asyncio.sleep(0.2)
    assert status(one, bad)["state"] == "available", "one failure of two allowed"
    await chat(client(two))
    await eventually(lambda: status(one, bad)["state"] == "cooldown" and status(two, bad)["state"] == "cooldown")


async def test_usage_counters_are_shared(fakes: Any, proxy_factory: Any, redis_url: str, namespace: str) -> None:
    (only,) = await fakes(1)
    text = config([deployment("m", only, rpm=4)], router={"redis_namespace": namespace})
    env = {"REDIS_URL": redis_url}
    one = await start(proxy_factory, text, env=env)
    two = await start(proxy_factory, text, env=env)
    await fresh_minute()
    await chat(client(one))
    await chat(client(one))
    await chat(client(two))
    await chat(client(two))
    # Usage reaches the other replica within one sync interval (by design): wait until both have it.
    await eventually(lambda: status(one, only)["requests_this_minute"] == 4, timeout=2)
    await eventually(lambda: status(two, only)["requests_this_minute"] == 4, timeout=2)
    with pytest.raises(openai.RateLimitError):
        await chat(client(one))
    with pytest.raises(openai.RateLimitError):
        await chat(client(two))
    assert len(only.requests) == 4, "rpm 4 across both proxies"


async def test_unreachable_redis_degrades_with_one_warning(
    fakes: Any, proxy_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad, good = await fakes(2)
    bad.failure_rate = 1.0
    caplog.set_level(logging.WARNING, logger="proxyllm.state")
    text = config(two_deployments(bad, good), router={"routing_strategy": "cost-based-routing", "allowed_fails": 1})
    proxy = await start(proxy_factory, text, env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    c = client(proxy)
    for _ in range(10):
        await chat(c)
    assert len(bad.requests) == 1, "cooldowns still work, per process"
    assert not proxy.runtime.shared_state.shared
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1


@pytest.fixture
def private_redis() -> Any:
    """A Redis server of our own, to stop and restart mid-test."""
    binary = shutil.which("redis-server")
    if binary is None:
        redis_url_or_skip()  # fails when services are required
        pytest.skip("redis-server is not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]

    class Server:
        url = f"redis://127.0.0.1:{port}/0"
        proc: subprocess.Popen[bytes] | None = None

        def start(self) -> None:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            import redis

            while True:
                try:
                    redis.Redis.from_url(self.url, socket_timeout=0.2).ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

        def stop(self) -> None:
            if self.proc is not None:
                self.proc.terminate()
                self.proc.wait(timeout=5)
                self.proc = None

    server = Server()
    server.start()
    yield server
    server.stop()


async def test_redis_going_away_mid_run_never_fails_requests(
    fakes: Any, proxy_factory: Any, private_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad, good = await fakes(2)
    caplog.set_level(logging.WARNING, logger="proxyllm.state")
    text = config(
        [*two_deployments(bad, good), deployment("limited", good, rpm=1000)],
        router={"routing_strategy": "cost-based-routing", "allowed_fails": 1, "cooldown_time": 1},
    )
    proxy = await start(proxy_factory, text, env={"REDIS_URL": private_redis.url})
    state = proxy.runtime.shared_state
    assert state.shared
    c = client(proxy)
    await chat(c, "limited")
    await asyncio.sleep(0.3)  # one usage sync

    private_redis.stop()
    bad.failure_rate = 1.0
    for _ in range(5):  # failures, cooldowns and usage writes while Redis is gone
        await chat(c)
        await chat(c, "limited")
        await asyncio.sleep(0.1)
    assert len(bad.requests) == 1
    await eventually(lambda: not state.shared, timeout=2)
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1

    private_redis.start()
    await eventually(lambda: state.shared, timeout=8)
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    await chat(c, "limited")
