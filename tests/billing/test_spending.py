"""Spending prepaid credits: never overspent under concurrency, charged once, exactly for what was produced.

Most run on one billing proxy per module (``shared_proxy``), each with an account of its own."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import openai
import pytest

from proxyllm.core.admission import prompt_tokens_max
from tests.billing.conftest import (
    balance_of,
    checkout_completed,
    deliver,
    event,
    fund,
    ledger_invariant,
    settled,
    unique,
    user_key,
)
from tests.conftest import ProxyServer, run_in_proxy
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import sdk

HI = [{"role": "user", "content": "hi"}]
COST = Decimal("0.000011")  # the fake's 1 prompt + 5 completion tokens on gpt-fake


async def test_concurrent_requests_never_overspend(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    user = unique("conc")
    key = await user_key(shared_admin, user)
    # The reservation for max_tokens=10: the admission step's prompt bound at 1e-6 + 10 x 2e-6.
    estimate = prompt_tokens_max({"messages": HI}) * Decimal("0.000001") + 10 * Decimal("0.000002")
    await fund(shared_admin, user, str(estimate * 10))
    openai_upstream.push(*[Action(delay=0.05) for _ in range(100)])
    client = sdk(shared_proxy, key)

    async def one() -> bool:
        try:
            await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=10)
        except openai.APIStatusError as exc:
            assert exc.status_code == 402, exc.message
            assert exc.type == "insufficient_quota" and "available" in exc.message
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(100)))
    ok = sum(results)
    assert 10 <= ok < 100
    await settled(shared_admin, user, shared_proxy)
    balances = await ledger_invariant(shared_proxy)
    assert balances[("user", user)] == estimate * 10 - COST * ok
    assert balances[("user", user)] >= 0
    usage = (await shared_admin.get("/stripe/transactions", params={"account_id": user, "limit": 500})).json()["data"]
    assert sum(1 for e in usage if e["kind"] == "usage") == ok


async def test_retries_are_charged_once(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    user = unique("retry")
    key = await user_key(shared_admin, user)
    await fund(shared_admin, user, "1")
    openai_upstream.fail(500, "flaky", times=2)
    await sdk(shared_proxy, key).chat.completions.create(model="gpt-fake", messages=HI, max_tokens=10)
    await settled(shared_admin, user, shared_proxy)
    entries = (await shared_admin.get("/stripe/transactions", params={"account_id": user})).json()["data"]
    assert [(e["kind"], e["amount"]) for e in entries] == [("usage", -0.000011), ("adjustment", 1.0)]


async def test_no_balance_is_402_before_the_upstream(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    user = unique("broke")
    key = await user_key(shared_admin, user)
    with pytest.raises(openai.APIStatusError) as info:
        await sdk(shared_proxy, key).chat.completions.create(model="gpt-fake", messages=HI)
    assert info.value.status_code == 402
    assert openai_upstream.requests == []


async def test_master_key_is_not_charged(shared_admin: httpx.AsyncClient) -> None:
    resp = await shared_admin.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
    assert resp.status_code == 200


async def test_cancelled_stream_is_charged_for_what_was_produced(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, ollama_upstream: FakeOllama
) -> None:
    user = unique("streamer")
    key = await user_key(shared_admin, user)
    await fund(shared_admin, user, "1")
    ollama_upstream.push(Action(chunk_delay=0.2))
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        async with client.stream(
            "POST", "/v1/chat/completions", json={"model": "llama3", "messages": HI, "stream": True}
        ) as resp:
            seen = 0
            async for line in resp.aiter_lines():
                if line.startswith("data: {"):
                    seen += 1
                if seen == 2:
                    break
    for _ in range(50):
        entries = (await shared_admin.get("/stripe/transactions", params={"account_id": user})).json()["data"]
        if entries[0]["kind"] == "usage":
            break
        await asyncio.sleep(0.1)
    charged = -Decimal(repr(entries[0]["amount"]))
    full = Decimal("0.0000005") * (7 + 5)
    per_token = Decimal("0.0000005")
    assert 0 < charged < full + per_token * 10
    assert charged % per_token == 0
    assert (await balance_of(shared_admin, user))["reserved"] == 0
    await ledger_invariant(shared_proxy)


async def test_refund_makes_balance_negative_until_topped_up(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    user = unique("refunder")
    key = await user_key(shared_admin, user)
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        sid = (
            await client.post(
                "/stripe/topup", json={"amount": 10, "success_url": "https://a", "cancel_url": "https://b"}
            )
        ).json()["checkout_session_id"]
    await deliver(shared_admin, event("checkout.session.completed", checkout_completed(sid, 1000, pi="pi_ref")))
    client = sdk(shared_proxy, key)
    await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=10)
    await settled(shared_admin, user, shared_proxy)

    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_ref", "amount": 1000, "amount_refunded": 400}
    await deliver(shared_admin, event("charge.refunded", charge))
    await deliver(shared_admin, event("charge.refunded", {**charge, "amount_refunded": 1000}))
    await deliver(shared_admin, event("charge.refunded", charge))  # an older event arriving late changes nothing
    info = await balance_of(shared_admin, user)
    assert Decimal(repr(info["balance"])) == -COST
    with pytest.raises(openai.APIStatusError) as refused:
        await client.chat.completions.create(model="gpt-fake", messages=HI)
    assert refused.value.status_code == 402

    await deliver(
        shared_admin,
        event(
            "charge.dispute.created",
            {"id": "dp_1", "object": "dispute", "amount": 200, "charge": "ch_1", "payment_intent": "pi_ref"},
        ),
    )
    assert Decimal(repr((await balance_of(shared_admin, user))["balance"])) == -COST - 2

    await fund(shared_admin, user, "5")
    await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=10)
    await ledger_invariant(shared_proxy)


async def test_transactions_page_newest_first(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    user = unique("pager")
    for amount in ("1", "2", "3"):
        await fund(shared_admin, user, amount)
    first = (await shared_admin.get("/stripe/transactions", params={"account_id": user, "limit": 2})).json()
    assert [e["amount"] for e in first["data"]] == [3, 2] and first["has_more"]
    assert [e["balance_after"] for e in first["data"]] == [6, 3]
    rest = (
        await shared_admin.get(
            "/stripe/transactions",
            params={"account_id": user, "limit": 2, "starting_after": first["data"][-1]["id"]},
        )
    ).json()
    assert [e["amount"] for e in rest["data"]] == [1] and not rest["has_more"]
    everyone = (await shared_admin.get("/stripe/balances")).json()["data"]
    assert (user, 6) in {(a["account_id"], a["balance"]) for a in everyone}
    bad = await shared_admin.post("/stripe/balance/adjust", json={"account_id": user, "amount": 1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "reason"
    audited = (
        await shared_admin.get("/audit/logs", params={"action": "billing.adjust", "target_id": f"user:{user}"})
    ).json()
    assert [row["after"]["reason"] for row in audited["data"]] == ["test", "test", "test"]
    assert audited["data"][0]["actor"] == "master"


async def test_expired_reservations_are_released(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    await fund(admin, "crash", "1")
    ledger = proxy.runtime.billing.ledger  # type: ignore[union-attr]

    async def crash_between_reserve_and_settle() -> int:
        ledger.reservation_ttl = 0
        await ledger.reserve(("user", "crash"), Decimal("0.4"), "req-that-died")
        return await ledger.release_expired()

    assert await asyncio.to_thread(run_in_proxy, proxy, crash_between_reserve_and_settle()) == 1
    info = await balance_of(admin, "crash")
    assert info["reserved"] == 0 and info["balance"] == 1


async def test_billing_disabled_without_stripe_settings(
    proxy_factory: object, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    from tests.conftest import MASTER_KEY, standard_config

    server: ProxyServer = await asyncio.to_thread(
        proxy_factory, standard_config(openai_upstream.api_base, ollama_upstream.url)
    )  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as client:
        resp = await client.get("/stripe/balance", params={"account_id": "x"})
        assert resp.status_code == 404 and "not enabled" in resp.json()["error"]["message"]
        key = (await client.post("/key/generate", json={"user_id": "free"})).json()["key"]
    await sdk(server, key).chat.completions.create(model="gpt-fake", messages=HI)
