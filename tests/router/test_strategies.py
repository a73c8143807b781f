"""Each routing strategy picks as specified, over many requests through the OpenAI SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from tests.router.conftest import chat, client, config, deployment, fresh_minute, start


async def spread(c: openai.AsyncOpenAI, n: int, *, batch: int = 20, **kwargs: Any) -> None:
    for i in range(0, n, batch):
        await asyncio.gather(*(chat(c, **kwargs) for _ in range(min(batch, n - i))))


async def test_simple_shuffle_follows_weights(fakes: Any, proxy_factory: Any) -> None:
    a, b = await fakes(2)
    proxy = await start(proxy_factory, config([deployment("m", a, weight=3), deployment("m", b, weight=1)]))
    await spread(client(proxy), 400)
    share = len(a.requests) / 400
    assert len(a.requests) + len(b.requests) == 400
    assert 0.68 < share < 0.82, f"weight 3:1 should send ~75% to the first, sent {share:.0%}"


async def test_least_busy_balances_concurrent_requests(fakes: Any, proxy_factory: Any) -> None:
    a, b = await fakes(2)
    a.delay = b.delay = 0.5
    text = config([deployment("m", a), deployment("m", b)], router={"routing_strategy": "least-busy"})
    proxy = await start(proxy_factory, text)
    await asyncio.gather(*(chat(client(proxy)) for _ in range(10)))
    assert (len(a.requests), len(b.requests)) == (5, 5), "ten requests in flight at once split evenly"


async def test_least_busy_avoids_the_slow_deployment(fakes: Any, proxy_factory: Any) -> None:
    slow, fast = await fakes(2)
    slow.delay = 1.0
    text = config([deployment("m", slow), deployment("m", fast)], router={"routing_strategy": "least-busy"})
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    tasks = []
    for _ in range(40):
        tasks.append(asyncio.create_task(chat(c)))
        await asyncio.sleep(0.02)
    await asyncio.gather(*tasks)
    assert len(slow.requests) <= 3, f"the busy deployment got {len(slow.requests)} of 40"
    assert proxy.runtime.router.stats[proxy.runtime.router.deployments[0].id].dep.in_flight == 0


async def test_latency_based_prefers_fast_and_explores(fakes: Any, proxy_factory: Any) -> None:
    slow, fast = await fakes(2)
    slow.delay = 0.06  # thirty times the fakes' own answer time: clear even on a loaded machine
    text = config(
        [deployment("m", slow), deployment("m", fast)],
        router={"routing_strategy": "latency-based-routing", "routing_strategy_args": {"exploration": 0.1}},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    for _ in range(100):
        await chat(c)
    assert len(fast.requests) >= 85, f"fast got {len(fast.requests)} of 100"
    assert len(slow.requests) >= 2, "exploration still measures the slow one now and then"

    # The slow one recovers and the fast one slows down: exploration notices, traffic moves over.
    slow.delay, fast.delay = 0.0, 0.06
    before = len(slow.requests)
    picks = []
    for _ in range(120):
        n = len(slow.requests)
        await chat(c)
        picks.append(len(slow.requests) > n)
    assert sum(picks[-40:]) >= 32, f"recovered deployment got {sum(picks[-40:])} of the last 40"
    assert len(slow.requests) > before


async def test_latency_based_uses_time_to_first_token_for_streams(fakes: Any, proxy_factory: Any) -> None:
    slow_start, quick_start = await fakes(2)
    slow_start.delay = 0.15
    text = config(
        [deployment("m", slow_start), deployment("m", quick_start)],
        router={"routing_strategy": "latency-based-routing", "routing_strategy_args": {"exploration": 0.0}},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    for _ in range(30):
        stream = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
        async for _chunk in stream:
            pass
    assert len(quick_start.requests) >= 27
    router = proxy.runtime.router
    ttfts = {s.dep.api_base: s.ttft for s in router.stats.values()}
    assert ttfts[slow_start.api_base] is not None and ttfts[slow_start.api_base] > 0.1


async def test_usage_based_prefers_fewest_tokens_this_minute(fakes: Any, proxy_factory: Any) -> None:
    wordy, terse = await fakes(2)
    wordy.reply_text = " ".join(["word"] * 60)
    terse.reply_text = "ok"
    text = config(
        [deployment("m", wordy), deployment("m", terse)], router={"routing_strategy": "usage-based-routing-v2"}
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    await fresh_minute()
    for _ in range(40):
        await chat(c)
    assert len(terse.requests) >= 32, f"the deployment using fewer tokens got {len(terse.requests)} of 40"
    tokens = sorted(s.tokens_in(s.minute) for s in proxy.runtime.router.stats.values())
    assert tokens[0] > 0


async def test_cost_based_picks_the_cheapest_available(fakes: Any, proxy_factory: Any) -> None:
    pricey, cheap = await fakes(2)
    text = config(
        [
            deployment("m", pricey, input_cost_per_token=0.00001, output_cost_per_token=0.00003),
            deployment("m", cheap, input_cost_per_token=0.000001, output_cost_per_token=0.000002),
        ],
        router={"routing_strategy": "cost-based-routing", "allowed_fails": 1, "cooldown_time": 30},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    await spread(c, 20)
    assert (len(pricey.requests), len(cheap.requests)) == (0, 20)
    cheap.failure_rate = 1.0  # the cheap one fails, cools down, and the next cheapest serves
    for _ in range(10):
        await chat(c)
    assert len(pricey.requests) == 10
    assert len(cheap.requests) == 21


async def test_rpm_limit_skips_a_deployment_at_its_limit(fakes: Any, proxy_factory: Any) -> None:
    limited, free = await fakes(2)
    text = config(
        [deployment("m", limited, rpm=2), deployment("m", free)], router={"routing_strategy": "cost-based-routing"}
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    await fresh_minute()
    for _ in range(10):
        await chat(c)
    assert len(limited.requests) == 2, "cost ties: the limited one serves until its rpm is used"
    assert len(free.requests) == 8


@pytest.mark.parametrize("limit", [{"rpm": 3}, {"tpm": 10}])
async def test_all_at_their_limit_is_429_with_retry_after(
    fakes: Any, proxy_factory: Any, limit: dict[str, int]
) -> None:
    a, b = await fakes(2)
    proxy = await start(proxy_factory, config([deployment("m", a, **limit), deployment("m", b, **limit)]))
    c = client(proxy)
    await fresh_minute()
    served = 0
    with pytest.raises(openai.RateLimitError) as info:
        for _ in range(20):
            await chat(c)
            served += 1
    assert served == (6 if "rpm" in limit else 4)  # 6 tokens a call: the third call on one would pass 10
    retry_after = int(info.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert "limit" in info.value.message
    assert len(a.requests) + len(b.requests) == served, "a request over the limit never reaches an upstream"


def test_unknown_strategy_is_a_startup_error() -> None:
    from proxyllm.config.loader import parse_config
    from proxyllm.core.errors import StartupError
    from proxyllm.server.runtime import Runtime

    with pytest.raises(StartupError) as info:
        Runtime(parse_config("router_settings:\n  routing_strategy: fastest\n"), env={})
    assert "fastest" in str(info.value) and "least-busy" in str(info.value)
