"""Budgets: refused before the upstream, exact under concurrency, reset on schedule.

All but the reset (it resets every budget due) share one proxy per module (``shared_proxy``): each its own
keys, user and team."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import ModuleType

import httpx
import openai
import pytest

from tests.accounts.conftest import HI, new_key, sdk
from tests.conftest import ProxyServer, run_in_proxy
from tests.fakes.base import Action
from tests.fakes.openai_upstream import FakeOpenAI

# The fake answers 5 completion tokens for a 1-word prompt: 1 x 0.000001 + 5 x 0.000002.
COST = Decimal("0.000011")


async def flushed_spend(proxy: ProxyServer, token: str) -> Decimal:
    async def read() -> Decimal:
        await proxy.runtime.spend.flush()
        async with proxy.runtime.db.session() as session:
            from proxyllm.db.tables import Key

            key = await session.get(Key, token)
            assert key is not None
            return key.spend

    result: Decimal = await asyncio.to_thread(run_in_proxy, proxy, read())
    return result


async def test_concurrent_requests_cannot_overspend(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    budget = COST * 5 + COST / 2  # covers five requests
    key = await new_key(shared_admin, max_budget=str(budget))
    openai_upstream.push(*[Action(delay=0.05) for _ in range(50)])
    client = sdk(shared_proxy, key["key"])

    async def one() -> bool:
        try:
            await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=10)
        except openai.BadRequestError as exc:
            assert exc.type == "budget_exceeded" and "Budget has been exceeded! Current cost:" in exc.message
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(50)))
    ok = sum(results)
    assert 1 <= ok <= 6, ok
    spend = await flushed_spend(shared_proxy, key["token"])
    assert spend == COST * ok
    assert spend <= budget + COST  # at most the overshoot of the last admitted request
    info = (await shared_admin.get("/key/info", params={"key": key["token"]})).json()["info"]
    assert Decimal(repr(info["spend"])) == COST * ok


async def test_exhausted_budget_is_refused_before_the_upstream(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    key = await new_key(shared_admin, max_budget=str(COST))
    client = sdk(shared_proxy, key["key"])
    await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    sent = len(openai_upstream.requests)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    assert f"Current cost: 0.000011, Max budget: {COST}" in info.value.message  # LiteLLM's words
    assert len(openai_upstream.requests) == sent


async def test_user_and_team_budgets_apply_to_their_keys(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    await shared_admin.post("/team/new", json={"team_id": "t-budget", "max_budget": 0})
    team_key = await new_key(shared_admin, team_id="t-budget")
    with pytest.raises(openai.BadRequestError) as info:
        await sdk(shared_proxy, team_key["key"]).chat.completions.create(model="gpt-fake", messages=HI)
    assert "team 't-budget'" in info.value.message

    await shared_admin.post(
        "/user/new", json={"user_id": "u-budget", "max_budget": str(COST), "auto_create_key": False}
    )
    k1 = await new_key(shared_admin, user_id="u-budget")
    k2 = await new_key(shared_admin, user_id="u-budget")
    await sdk(shared_proxy, k1["key"]).chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    with pytest.raises(openai.BadRequestError) as info:
        await sdk(shared_proxy, k2["key"]).chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    assert "user 'u-budget'" in info.value.message


async def test_failed_request_releases_its_reservation(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    key = await new_key(shared_admin, max_budget=str(COST * 3))
    openai_upstream.fail(400, "bad request upstream")
    client = sdk(shared_proxy, key["key"])
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    for _ in range(3):
        await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    assert await flushed_spend(shared_proxy, key["token"]) == COST * 3


async def test_budget_duration_resets_spend(proxy: ProxyServer, admin: httpx.AsyncClient, clock: ModuleType) -> None:
    key = await new_key(admin, max_budget=str(COST), budget_duration="2s")
    client = sdk(proxy, key["key"])
    await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)
    clock.advance(2.2)
    await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=5)

    async def reset() -> int:
        await proxy.runtime.spend.flush()
        clock.advance(2.1)  # the next period ends too
        return await proxy.runtime.spend.reset_budgets()

    assert await asyncio.to_thread(run_in_proxy, proxy, reset()) >= 1
    info = (await admin.get("/key/info", params={"key": key["token"]})).json()["info"]
    assert info["spend"] == 0 and info["budget_reset_at"]
