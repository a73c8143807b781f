"""The router's parts on their own: no HTTP, a provider that answers from memory."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.router import Router, RouterPolicy
from proxyllm.core.routing.policy import parse_retry_policy
from proxyllm.core.routing.wildcards import WildcardRoute, Wildcards
from proxyllm.core.streaming import relay
from proxyllm.core.types import Operation, Usage


class MemoryProvider:
    name = "memory"

    def __init__(self) -> None:
        self.failures: list[ProxyError] = []

    async def complete(self, dep: Deployment, ctx: RequestContext) -> bytes:
        if self.failures:
            raise self.failures.pop(0)
        ctx.usage = Usage(3, 4)
        return b"{}"

    async def stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        yield b"data: 1\n\n"
        yield b"data: [DONE]\n\n"


def dep(name: str, i: int, provider: Any, **kwargs: Any) -> Deployment:
    return Deployment(
        id=f"{name}-{i}", model_name=name, provider=provider, upstream_model=name, api_base=f"mem://{i}", **kwargs
    )


def ctx(model: str = "m", **body: Any) -> RequestContext:
    return RequestContext(request_id="r", operation=Operation.CHAT, body={"model": model, "messages": [], **body})


async def test_weighted_pick_is_deterministic_with_a_seed() -> None:
    provider = MemoryProvider()
    deps = [dep("m", 0, provider, weight=1), dep("m", 1, provider, weight=4)]
    counts: Counter[str] = Counter()
    router = Router(deps, RouterPolicy(), rng=random.Random(7))
    for _ in range(1000):
        c = ctx()
        await router.complete(c)
        assert c.deployment is not None
        counts[c.deployment.id] += 1
    assert 750 < counts["m-1"] < 850
    again: Counter[str] = Counter()
    router = Router(deps, RouterPolicy(), rng=random.Random(7))
    for _ in range(1000):
        c = ctx()
        await router.complete(c)
        assert c.deployment is not None
        again[c.deployment.id] += 1
    assert again == counts


async def test_usage_is_counted_per_minute() -> None:
    provider = MemoryProvider()
    router = Router([dep("m", 0, provider)], RouterPolicy())
    for _ in range(3):
        await router.complete(ctx())
    state = router.status(router.deployments[0])
    assert state["requests_this_minute"] == 3 and state["tokens_this_minute"] == 21


async def test_allowed_fails_then_cooldown_then_fail_fast() -> None:
    provider = MemoryProvider()
    router = Router([dep("m", 0, provider)], RouterPolicy(num_retries=0, allowed_fails=2, cooldown_time=60))
    for _ in range(2):
        provider.failures.append(ProxyError(ErrorKind.UPSTREAM, "boom", status=500))
        with pytest.raises(ProxyError):
            await router.complete(ctx())
    with pytest.raises(ProxyError) as info:
        await router.complete(ctx())
    assert info.value.kind is ErrorKind.UNAVAILABLE and info.value.retry_after is not None
    assert 59 < info.value.retry_after <= 60


async def test_relay_closed_before_reading_still_reports_the_end() -> None:
    provider = MemoryProvider()
    router = Router([dep("m", 0, provider)], RouterPolicy())
    c = ctx(stream=True)
    first, events = await router.open_stream(c)
    assert router.deployments[0].in_flight == 1
    stream = relay(c, first, events, 5.0)
    await stream.aclose()
    await stream.aclose()
    assert router.deployments[0].in_flight == 0, "released once, even though nothing was read"


async def test_relay_passes_every_event_and_marks_success() -> None:
    provider = MemoryProvider()
    router = Router([dep("m", 0, provider)], RouterPolicy())
    c = ctx(stream=True)
    first, events = await router.open_stream(c)
    assert [e async for e in relay(c, first, events, 5.0)] == [b"data: 1\n\n", b"data: [DONE]\n\n"]
    assert c.outcome == "success" and router.deployments[0].in_flight == 0


def test_the_most_specific_wildcard_wins() -> None:
    def builder(tag: str) -> Any:
        return lambda model, star: dep(model, 0, MemoryProvider(), model_info={"tag": tag, "star": star})

    wild = Wildcards(
        [
            WildcardRoute("*", builder("any")),
            WildcardRoute("ollama/*", builder("ollama")),
            WildcardRoute("ollama/llama*", builder("llama")),
        ]
    )
    found = wild.deployments_for("ollama/llama3:8b")
    assert found is not None and found[0] == "ollama/llama*"
    assert found[1][0].model_info == {"tag": "llama", "star": "3:8b"}
    other = wild.deployments_for("ollama/qwen3")
    assert other is not None and other[1][0].model_info["star"] == "qwen3"
    anything = wild.deployments_for("gpt-4o")
    assert anything is not None and anything[1][0].model_info["tag"] == "any"
    assert Wildcards([WildcardRoute("openai/*", builder("x"))]).deployments_for("openai/") is None


def test_retry_policy_names() -> None:
    policy = parse_retry_policy({"TimeoutErrorRetries": 4, "AuthenticationErrorRetries": 0})
    assert policy[ErrorKind.TIMEOUT] == 4 and policy[ErrorKind.PERMISSION] == 0
    with pytest.raises(ValueError, match="whole number"):
        parse_retry_policy({"TimeoutErrorRetries": -1})
