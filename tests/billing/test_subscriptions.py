"""Subscriptions gate access through signed webhooks; methods combine (meters + prepaid)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest

from tests.billing.conftest import BILLING_ENV, FakeStripe, deliver, event
from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def start(
    database_url: str,
    stripe_api: FakeStripe,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> Any:
    async def make(method: str, **env: str) -> ProxyServer:
        config = standard_config(openai_upstream.api_base, ollama_upstream.url)
        server: ProxyServer = await asyncio.to_thread(
            proxy_factory,
            config,
            env={
                **BILLING_ENV,
                "STRIPE_USE_PREPAID_BALANCE": "",
                "STRIPE_BILLING_METHOD": method,
                "STRIPE_METER_RETRY_BASE": "0.2",
                "DATABASE_URL": database_url,
                **env,
            },
        )
        return server

    return make


def subscription(status: str, sub_id: str = "sub_1") -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": "cus_sub",
        "status": status,
        "cancel_at_period_end": False,
        "items": {
            "data": [
                {
                    "price": {"id": "price_pro"},
                    "current_period_start": 1_790_000_000,
                    "current_period_end": 1_792_600_000,
                }
            ]
        },
    }


async def test_subscription_lifecycle_gates_a_key(start: Any) -> None:
    proxy = await start("subscriptions")
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = (await admin.post("/user/new", json={"user_id": "subscriber", "stripe_customer_id": "cus_sub"})).json()
        client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key["key"], max_retries=0)

        async def refused(reason: str) -> None:
            with pytest.raises(openai.APIStatusError) as info:
                await client.chat.completions.create(model="gpt-fake", messages=HI)
            assert info.value.status_code == 402 and reason in info.value.message

        await refused("has no subscription")
        now = int(time.time())
        created = event("customer.subscription.created", subscription("active"))
        created["created"] = now
        assert (await deliver(admin, created)).json()["result"] == "subscription active"
        await client.chat.completions.create(model="gpt-fake", messages=HI)

        updated = event("customer.subscription.updated", subscription("past_due"))
        updated["created"] = now + 10
        await deliver(admin, updated)
        await refused("past_due")
        stale = event("customer.subscription.updated", subscription("active"))
        stale["created"] = now + 5  # older than the past_due update: ignored
        assert (await deliver(admin, stale)).json()["result"] == "stale event ignored"
        await refused("past_due")

        failed = event(
            "invoice.payment_failed",
            {"id": "in_1", "object": "invoice", "parent": {"subscription_details": {"subscription": "sub_1"}}},
        )
        assert (await deliver(admin, failed)).json()["result"] == "invoice payment_failed"
        healed = event("customer.subscription.updated", subscription("active"))
        healed["created"] = now + 20
        await deliver(admin, healed)
        await client.chat.completions.create(model="gpt-fake", messages=HI)
        paid = event("invoice.paid", {"id": "in_2", "object": "invoice", "subscription": "sub_1"})
        await deliver(admin, paid)

        gone = event("customer.subscription.deleted", subscription("canceled"))
        gone["created"] = now + 30
        await deliver(admin, gone)
        await refused("canceled")

        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key['key']}"}) as own:
            state = (await own.get("/stripe/subscription")).json()
        assert state["access"] is False and state["subscriptions"][0]["last_invoice_status"] == "paid"
        assert (await admin.get("/stripe/subscriptions")).json()["data"][0]["price_id"] == "price_pro"
        unlinked = event("customer.subscription.created", {**subscription("active"), "customer": "cus_nobody"})
        assert (await deliver(admin, unlinked)).json()["result"] == "ignored: unlinked customer"


async def test_past_due_grace(start: Any) -> None:
    proxy = await start("subscriptions", STRIPE_PAST_DUE_GRACE_HOURS="1")
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = (await admin.post("/user/new", json={"user_id": "late", "stripe_customer_id": "cus_sub"})).json()["key"]
        await deliver(admin, event("customer.subscription.updated", subscription("past_due")))
    await openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key).chat.completions.create(
        model="gpt-fake", messages=HI
    )


async def test_meters_plus_prepaid_account_each_once(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start("meters+prepaid")
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = (await admin.post("/user/new", json={"user_id": "hybrid", "stripe_customer_id": "cus_linked"})).json()
        client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key["key"], max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="gpt-fake", messages=HI)
        assert info.value.status_code == 402 and "prepaid balance" in info.value.message
        await admin.post("/stripe/balance/adjust", json={"account_id": "hybrid", "amount": 1, "reason": "credit"})
        for _ in range(3):
            await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=10)
        for _ in range(100):
            counts = (await admin.get("/stripe/meter-events")).json()["counts"]
            ledger = (await admin.get("/stripe/transactions", params={"account_id": "hybrid"})).json()["data"]
            if counts["sent"] == 3 and sum(e["kind"] == "usage" for e in ledger) == 3:
                break
            await asyncio.sleep(0.1)
        assert counts == {"pending": 0, "sent": 3, "failed": 0}
        assert sum(e["kind"] == "usage" for e in ledger) == 3
