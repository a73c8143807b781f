"""Automatic recharge: one off-session PaymentIntent however many settlements (and replicas) see the low
balance; credited by the webhook; a decline or requires_action turns it off and notifies; the monthly cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.billing.conftest import FakeStripe, deliver, event, fund, ledger_invariant, settled, unique
from tests.billing.test_notifications import Receiver, notifying_proxies, receiver, wait_for
from tests.conftest import ProxyServer, run_in_proxy
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import key_client

__all__ = ["receiver"]  # the fixture, shared with the notification tests
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
async def module_receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
def shared_receiver(module_receiver: Receiver) -> Receiver:
    """The module's receiver, with nothing received yet."""
    module_receiver.reset()
    return module_receiver


@pytest.fixture(scope="module")
async def shared_proxy(
    module_database_url: str,
    module_stripe_api: FakeStripe,
    module_proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    module_receiver: Receiver,
) -> ProxyServer:
    """A notifying billing proxy for the module's single-replica tests, each with its own account."""
    make = notifying_proxies(
        module_database_url, module_proxy_factory, openai_upstream, ollama_upstream, module_receiver, "0"
    )
    server: ProxyServer = await make()
    return server


@pytest.fixture
def start(
    database_url: str,
    stripe_api: FakeStripe,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    receiver: Receiver,
) -> Any:
    return notifying_proxies(database_url, proxy_factory, openai_upstream, ollama_upstream, receiver, "0")


async def customer_with_card(admin: httpx.AsyncClient, user: str, stripe_api: FakeStripe) -> str:
    """A user charged 0.50 per request, with a card saved through a SetupIntent (confirmed by its webhook)."""
    card = {"models": {"gpt-fake": {"per_request": "0.5"}}}
    assert (await admin.put("/billing/rate_cards/flat", json=card)).status_code == 200
    made = await admin.post("/user/new", json={"user_id": user, "user_email": f"{user}@example.com"})
    key = str(made.json()["key"])
    assert (await admin.post("/billing/pricing", json={"account_id": user, "rate_card": "flat"})).status_code == 200
    async with httpx.AsyncClient(base_url=admin.base_url, headers={"authorization": f"Bearer {key}"}) as customer:
        # Enabling before a card is saved is refused.
        early = await customer.put(
            "/stripe/auto_recharge", json={"enabled": True, "threshold": 5, "amount": 10, "monthly_cap": 25}
        )
        assert early.status_code == 400 and early.json()["error"]["code"] == "no_saved_card"
        made_intent = await customer.post("/stripe/auto_recharge/setup_intent", json={})
        assert made_intent.status_code == 200, made_intent.text
        assert made_intent.json()["client_secret"].startswith("seti_")
    sent = stripe_api.setup_intents[-1]
    assert sent["usage"] == "off_session" and sent["metadata[proxyllm_account_id]"] == user
    confirmed = {
        "id": made_intent.json()["setup_intent"],
        "object": "setup_intent",
        "status": "succeeded",
        "payment_method": "pm_card_visa",
        "customer": sent["customer"],
        "metadata": {"proxyllm_account_type": "user", "proxyllm_account_id": user},
    }
    assert (await deliver(admin, event("setup_intent.succeeded", confirmed))).status_code == 200
    return key


async def enable(admin: httpx.AsyncClient, user: str, **settings: Any) -> dict[str, Any]:
    body = {"account_id": user, "enabled": True, "threshold": 5, "amount": 10, "monthly_cap": 25, **settings}
    resp = await admin.put("/stripe/auto_recharge", json=body)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def refresh(*proxies: ProxyServer) -> None:
    """Every replica learns now which accounts have auto-recharge on (it otherwise re-reads every 10 s)."""
    for proxy in proxies:
        assert proxy.runtime.billing is not None
        await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.billing.recharger.refresh())


async def spend(proxy: ProxyServer, key: str, count: int) -> int:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=60, headers={"authorization": f"Bearer {key}"}) as c:
        results = await asyncio.gather(
            *(c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI}) for _ in range(count))
        )
    assert all(r.status_code in (200, 402) for r in results), [r.text for r in results if r.status_code != 200]
    return sum(1 for r in results if r.status_code == 200)


def succeeded(intent: dict[str, Any]) -> dict[str, Any]:
    return {**intent, "status": "succeeded", "amount_received": intent["amount"]}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_fifty_requests_on_two_replicas_start_one_recharge(start: Any, stripe_api: FakeStripe) -> None:
    first, second = await start(), await start()
    async with key_client(first, timeout=60) as admin:
        key = await customer_with_card(admin, "busy", stripe_api)
        await fund(admin, "busy", "6")
        shown = await enable(admin, "busy")
        assert shown["card_saved"] and shown["enabled"] and shown["monthly_cap"] == 25
        await refresh(first, second)
        served = await asyncio.gather(spend(first, key, 25), spend(second, key, 25))
        assert sum(served) == 12  # 6.00 at 0.50 a request
        await settled(admin, "busy", first, second)
        await wait_for(lambda: stripe_api.payment_intents)
        await asyncio.sleep(1.5)  # time for a second one, if anything would create it
        assert len(stripe_api.payment_intents) == 1
        intent = stripe_api.payment_intents[0]
        assert intent["amount"] == 1000 and intent["payment_method"] == "pm_card_visa"
        assert intent["receipt_email"] == "busy@example.com"
        assert intent["metadata"]["proxyllm_account_id"] == "busy"
        assert intent["idempotency_key"] == intent["metadata"]["proxyllm_recharge"]
        # The API's answer credits nothing: the webhook does, once.
        assert (await admin.get("/stripe/balance", params={"account_id": "busy"})).json()["balance"] == 0
        paid = event("payment_intent.succeeded", succeeded(intent))
        assert (await deliver(admin, paid)).json()["result"] == "credited"
        assert (await deliver(admin, event("payment_intent.succeeded", succeeded(intent)))).json()["result"] in (
            "already credited",
            "ignored: attempt already settled",
        )
        info = (await admin.get("/stripe/balance", params={"account_id": "busy"})).json()
        assert info["balance"] == 10
        state = (await admin.get("/stripe/auto_recharge", params={"account_id": "busy"})).json()
        assert state["charged_this_month"] == 10 and not state["in_flight"] and state["enabled"]
        await ledger_invariant(first)


async def test_monthly_cap_is_never_exceeded(
    shared_proxy: ProxyServer, stripe_api: FakeStripe, shared_receiver: Receiver
) -> None:
    user = unique("capped")
    proxy = shared_proxy
    async with key_client(proxy, timeout=60) as admin:
        key = await customer_with_card(admin, user, stripe_api)
        await fund(admin, user, "6")
        await enable(admin, user, monthly_cap=15)  # one recharge of 10 fits, a second would not
        await refresh(proxy)
        assert await spend(proxy, key, 3) == 3  # 4.50: under the threshold
        await settled(admin, user, proxy)
        await wait_for(lambda: stripe_api.payment_intents)
        paid = event("payment_intent.succeeded", succeeded(stripe_api.payment_intents[0]))
        assert (await deliver(admin, paid)).json()["result"] == "credited"  # 14.50
        assert await spend(proxy, key, 20) == 20  # down to 4.50 again: under the threshold, over the cap
        await settled(admin, user, proxy)
        await asyncio.sleep(1.5)
        assert len(stripe_api.payment_intents) == 1
        state = (await admin.get("/stripe/auto_recharge", params={"account_id": user})).json()
        assert state["charged_this_month"] == 10 and state["enabled"]
    await wait_for(lambda: "auto_recharge.succeeded" in shared_receiver.delivered(user))
    assert shared_receiver.delivered(user)["auto_recharge.succeeded"][0]["data"]["amount"] == "10"


@pytest.mark.parametrize("outcome", ["declined", "requires_action"])
async def test_a_failed_recharge_turns_auto_recharge_off_and_notifies(
    shared_proxy: ProxyServer, stripe_api: FakeStripe, shared_receiver: Receiver, outcome: str
) -> None:
    user = unique("declined")
    stripe_api.payment_outcome = outcome
    proxy = shared_proxy
    async with key_client(proxy, timeout=60) as admin:
        key = await customer_with_card(admin, user, stripe_api)
        await fund(admin, user, "6")
        await enable(admin, user)
        await refresh(proxy)
        assert await spend(proxy, key, 4) == 4
        await settled(admin, user, proxy)
        await wait_for(lambda: "auto_recharge.failed" in shared_receiver.delivered(user))
        failed = shared_receiver.delivered(user)["auto_recharge.failed"][0]
        assert failed["account"] == {"type": "user", "id": user} and failed["data"]["auto_recharge"] == "off"
        assert ("card declined" if outcome == "declined" else "requires_action") in failed["data"]["reason"]
        state = (await admin.get("/stripe/auto_recharge", params={"account_id": user})).json()
        assert not state["enabled"] and not state["in_flight"] and state["charged_this_month"] == 0
        assert state["disabled_reason"]
        # Nothing is retried: more low-balance settlements start no new payment.
        assert await spend(proxy, key, 2) == 2
        await settled(admin, user, proxy)
        await asyncio.sleep(1)
        assert len(stripe_api.payment_intents) == 1
        assert (await admin.get("/stripe/balance", params={"account_id": user})).json()["balance"] == 3


async def test_auto_recharge_input_is_checked(shared_proxy: ProxyServer, stripe_api: FakeStripe) -> None:
    user = unique("hostile-rc")
    proxy = shared_proxy
    async with key_client(proxy, timeout=60) as admin:
        key = await customer_with_card(admin, user, stripe_api)
        bad = [
            {"enabled": True, "threshold": -1, "amount": 10, "monthly_cap": 25},
            {"enabled": True, "threshold": 5, "amount": 10.001, "monthly_cap": 25},
            {"enabled": True, "threshold": 5, "amount": 10, "monthly_cap": 5},
            {"enabled": True, "threshold": 5, "amount": 1, "monthly_cap": 25},  # under STRIPE_TOPUP_MIN
            {"enabled": True, "threshold": "NaN", "amount": 10, "monthly_cap": 25},
            {"enabled": "yes please", "threshold": 5, "amount": 10, "monthly_cap": 25},
            {"enabled": True, "threshold": 5, "amount": 10, "monthly_cap": 25, "extra": 1},
        ]
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as customer:
            for body in bad:
                resp = await customer.put("/stripe/auto_recharge", json=body)
                assert resp.status_code == 400, (body, resp.text)
                assert resp.json()["error"]["type"] == "invalid_request_error"
            other = await customer.put(
                "/stripe/auto_recharge",
                json={"account_id": "someone-else", "enabled": False, "threshold": 1, "amount": 10, "monthly_cap": 20},
            )
            assert other.status_code == 403
            for url in ("javascript:alert(1)", "ftp://x", "https://" + "a" * 2100):
                resp = await customer.post("/stripe/portal", json={"return_url": url})
                assert resp.status_code == 400, resp.text
        # Malformed recharge webhooks are recorded and ignored, never credited, never a 500.
        evil = {
            "id": "pi_evil",
            "object": "payment_intent",
            "amount_received": 100000,
            "currency": "usd",
            "metadata": {"proxyllm_recharge": "rc_x", "proxyllm_account_type": "admin", "proxyllm_account_id": "x"},
        }
        resp = await deliver(admin, event("payment_intent.succeeded", evil))
        assert resp.status_code == 200 and resp.json()["result"].startswith("ignored: malformed")


async def test_portal_session_and_receipt_email(shared_proxy: ProxyServer, stripe_api: FakeStripe) -> None:
    user = unique("portal-user")
    proxy = shared_proxy
    async with key_client(proxy, timeout=60) as admin:
        made = await admin.post("/user/new", json={"user_id": user, "user_email": "portal@example.com"})
        key = made.json()["key"]
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as customer:
            resp = await customer.post("/stripe/portal", json={"return_url": "https://app.example/billing"})
            assert resp.status_code == 200, resp.text
            assert resp.json()["url"].startswith("https://billing.stripe.com/p/session/")
            sent = stripe_api.portal_sessions[-1]
            assert sent["return_url"] == "https://app.example/billing"
            assert stripe_api.customers[-1]["email"] == "portal@example.com"
            assert sent["customer"] == stripe_api.customer_ids[-1]
            topup = await customer.post(
                "/stripe/topup", json={"amount": 10, "success_url": "https://x/ok", "cancel_url": "https://x/no"}
            )
            assert topup.status_code == 200, topup.text
            assert stripe_api.sessions[-1]["payment_intent_data[receipt_email]"] == "portal@example.com"
            card = await customer.post(
                "/stripe/auto_recharge/card", json={"success_url": "https://x/ok", "cancel_url": "https://x/no"}
            )
            assert card.status_code == 200, card.text
            assert stripe_api.sessions[-1]["mode"] == "setup"
            assert stripe_api.sessions[-1]["setup_intent_data[metadata][proxyllm_account_id]"] == user
