"""Promotional credits: spent before paid credit (by priority), visible to the customer, expired with a
ledger entry that never takes paid credit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from tests.billing.conftest import BILLING_ENV, FakeStripe, fund, ledger_invariant, settled
from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import eventually

HI = [{"role": "user", "content": "hi"}]


async def test_grants_are_spent_first_and_expire(
    database_url: str,
    stripe_api: FakeStripe,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    clock: Any,
) -> None:
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    proxy: ProxyServer = await asyncio.to_thread(
        proxy_factory, config, env={**BILLING_ENV, "DATABASE_URL": database_url}
    )
    assert proxy.runtime.billing is not None
    grants_store = proxy.runtime.billing.grants
    async with httpx.AsyncClient(
        base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"}
    ) as admin:
        assert (
            await admin.put("/billing/rate_cards/flat", json={"models": {"gpt-fake": {"per_request": "0.5"}}})
        ).is_success
        key = (await admin.post("/user/new", json={"user_id": "promo"})).json()["key"]
        assert (await admin.post("/billing/pricing", json={"account_id": "promo", "rate_card": "flat"})).is_success
        await fund(admin, "promo", "1")  # paid credit
        soon = (clock.now() + timedelta(minutes=5)).isoformat()
        later = (clock.now() + timedelta(days=30)).isoformat()
        low = await admin.post(
            "/stripe/grants",
            json={"account_id": "promo", "amount": 2, "priority": 1, "expires_at": soon, "description": "welcome"},
        )
        assert low.status_code == 200, low.text
        high = await admin.post(
            "/stripe/grants", json={"account_id": "promo", "amount": "1", "priority": 5, "expires_at": later}
        )
        assert high.status_code == 200, high.text
        for body in (
            {"account_id": "promo", "amount": 0},
            {"account_id": "promo", "amount": -5},
            {"account_id": "promo", "amount": "NaN"},
            {"account_id": "promo", "amount": 1, "expires_at": "2001-01-01T00:00:00Z"},
            {"account_id": "promo", "amount": 1, "expires_at": "someday"},
            {"account_id": "promo", "amount": 1, "priority": 10**9},
            {"account_id": "promo", "amount": 1, "description": "a\u0000b"},
        ):
            resp = await admin.post("/stripe/grants", json=body)
            assert resp.status_code == 400, (body, resp.text)
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as customer:
            assert (await customer.post("/stripe/grants", json={"account_id": "promo", "amount": 5})).status_code == 403
            for _ in range(3):
                resp = await customer.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                assert resp.status_code == 200, resp.text
            await settled(admin, "promo", proxy)
            grants = {g["priority"]: g for g in (await customer.get("/stripe/grants")).json()["data"]}
        # 1.50 spent: the priority-5 grant first (1.00), then 0.50 of the priority-1 grant; paid credit untouched.
        assert grants[5]["remaining"] == 0 and grants[1]["remaining"] == 1.5
        assert grants[1]["description"] == "welcome" and not grants[1]["expired"]
        assert (await admin.get("/stripe/balance", params={"account_id": "promo"})).json()["balance"] == 2.5

        async def expired() -> list[dict[str, Any]]:
            entries = (await admin.get("/stripe/transactions", params={"account_id": "promo"})).json()["data"]
            return [e for e in entries if e["kind"] == "grant_expiry"]

        assert not await expired()
        clock.advance(301)  # the welcome grant's time has come; the upkeep loop expires it
        found = await eventually(expired)
        assert [e["amount"] for e in found] == [-1.5]
        assert (await admin.get("/stripe/balance", params={"account_id": "promo"})).json()["balance"] == 1.0
        grants = {
            g["priority"]: g for g in (await admin.get("/stripe/grants", params={"account_id": "promo"})).json()["data"]
        }
        assert grants[1]["expired"] and grants[1]["remaining"] == 0
        for _ in range(2):  # expiry is written once, however often the upkeep looks
            await asyncio.to_thread(run_in_proxy, proxy, grants_store.expire_due())
        assert len(await expired()) == 1
    await ledger_invariant(proxy)
