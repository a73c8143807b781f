"""Top-ups: Checkout session -> signed webhook -> balance, exactly once, in any order.

Most run on one billing proxy per module (``shared_proxy``): each with its own account and payment intent
ids (webhooks find top-ups by payment intent)."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import orjson
import pytest

from tests.billing.conftest import (
    FakeStripe,
    balance_of,
    checkout_completed,
    deliver,
    event,
    ledger_invariant,
    sign,
    unique,
    user_key,
)
from tests.conftest import ProxyServer


async def start_topup(proxy: ProxyServer, key: str, amount: object = 25) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        resp = await client.post(
            "/stripe/topup",
            json={"amount": amount, "success_url": "https://app/ok", "cancel_url": "https://app/cancel"},
        )
    assert resp.status_code == 200, resp.text
    data: dict[str, object] = resp.json()
    return data


async def test_topup_then_webhook_credits_once(
    proxy: ProxyServer, admin: httpx.AsyncClient, stripe_api: FakeStripe
) -> None:
    key = await user_key(admin, "alice")
    started = await start_topup(proxy, key, 25)
    session_id = str(started["checkout_session_id"])
    assert str(started["checkout_url"]).startswith("https://checkout.stripe.com/")
    assert stripe_api.customers[0]["metadata[proxyllm_account_id]"] == "alice"
    form = stripe_api.sessions[0]
    assert form["mode"] == "payment" and form["customer"] == stripe_api.customer_ids[0]
    assert form["line_items[0][price_data][unit_amount]"] == "2500"
    assert form["metadata[proxyllm_account_id]"] == "alice"

    completed = event("checkout.session.completed", checkout_completed(session_id, 2500))
    assert (await deliver(admin, completed)).json()["result"] == "credited"
    assert (await deliver(admin, completed)).json()["result"] == "duplicate event ignored"
    late = event("checkout.session.async_payment_succeeded", checkout_completed(session_id, 2500))
    assert (await deliver(admin, late)).json()["result"] == "already credited"
    info = await balance_of(admin, "alice")
    assert info["balance"] == 25 and info["total_topups"] == 25
    assert info["stripe_customer_id"] == stripe_api.customer_ids[0]

    second = await start_topup(proxy, key, "10.50")
    assert len(stripe_api.customers) == 1, "the customer is created once and reused"
    await deliver(
        admin,
        event("checkout.session.completed", checkout_completed(str(second["checkout_session_id"]), 1050, pi="pi_2")),
    )
    assert (await balance_of(admin, "alice"))["balance"] == 35.5
    await ledger_invariant(proxy)


async def test_async_payment_out_of_order(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    user, pi, pi_failed = unique("bob"), unique("pi"), unique("pi")
    key = await user_key(shared_admin, user)
    sid = str((await start_topup(shared_proxy, key, 20))["checkout_session_id"])
    await deliver(shared_admin, event("checkout.session.async_payment_succeeded", checkout_completed(sid, 2000, pi=pi)))
    await deliver(shared_admin, event("checkout.session.completed", checkout_completed(sid, 2000, paid=False, pi=pi)))
    assert (await balance_of(shared_admin, user))["balance"] == 20

    sid2 = str((await start_topup(shared_proxy, key, 30))["checkout_session_id"])
    await deliver(
        shared_admin, event("checkout.session.completed", checkout_completed(sid2, 3000, paid=False, pi=pi_failed))
    )
    assert (await balance_of(shared_admin, user))["balance"] == 20, "unpaid: nothing credited yet"
    await deliver(
        shared_admin,
        event("checkout.session.async_payment_failed", checkout_completed(sid2, 3000, paid=False, pi=pi_failed)),
    )
    assert (await balance_of(shared_admin, user))["balance"] == 20
    ledger = (await shared_admin.get("/stripe/transactions", params={"account_id": user})).json()["data"]
    assert [e["kind"] for e in ledger] == ["topup_failed", "topup"]
    await ledger_invariant(shared_proxy)


async def test_amount_is_taken_from_stripe_not_metadata(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    user, pi = unique("carol"), unique("pi")
    key = await user_key(shared_admin, user)
    sid = str((await start_topup(shared_proxy, key, 5))["checkout_session_id"])
    obj = {**checkout_completed(sid, 500, pi=pi), "metadata": {"topup_amount": "5000"}}
    await deliver(shared_admin, event("checkout.session.completed", obj))
    assert (await balance_of(shared_admin, user))["balance"] == 5


@pytest.mark.parametrize("case", ["no signature", "wrong secret", "stale", "tampered", "malformed"])
async def test_bad_webhooks_are_400_and_change_nothing(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, case: str
) -> None:
    user = unique("dave")
    key = await user_key(shared_admin, user)
    sid = str((await start_topup(shared_proxy, key, 10))["checkout_session_id"])
    payload = orjson.dumps(event("checkout.session.completed", checkout_completed(sid, 1000)))
    headers = {"content-type": "application/json", "stripe-signature": sign(payload)}
    if case == "no signature":
        del headers["stripe-signature"]
    elif case == "wrong secret":
        headers["stripe-signature"] = sign(payload, secret="whsec_other")
    elif case == "stale":
        headers["stripe-signature"] = sign(payload, timestamp=int(time.time()) - 301)
    elif case == "tampered":
        payload = payload.replace(b"1000", b"9000")
    else:
        payload = b"{not json"
        headers["stripe-signature"] = sign(payload)
    resp = await shared_admin.post("/stripe/webhook", content=payload, headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert (await balance_of(shared_admin, user))["balance"] == 0
    assert WEBHOOK_SECRET_NOT_IN(resp.text)


def WEBHOOK_SECRET_NOT_IN(text: str) -> bool:
    from tests.billing.conftest import WEBHOOK_SECRET

    return WEBHOOK_SECRET not in text


async def test_unknown_event_is_acknowledged(shared_admin: httpx.AsyncClient) -> None:
    resp = await deliver(shared_admin, event("customer.created", {"id": "cus_x"}))
    assert resp.status_code == 200 and resp.json()["result"] == "ignored"


@pytest.mark.parametrize("amount", [0, 1, -5, 100000, "2.555", "lots"])
async def test_bad_topup_amounts(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, amount: object) -> None:
    user = unique("erin")
    key = await user_key(shared_admin, user)
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        resp = await client.post(
            "/stripe/topup", json={"amount": amount, "success_url": "https://a", "cancel_url": "https://b"}
        )
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "amount"


async def test_keys_see_only_their_own_account(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    user = unique("fay")
    key = await user_key(shared_admin, user)
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        own = await client.get("/stripe/balance")
        assert own.status_code == 200 and own.json()["account_id"] == user
        assert (await client.get("/stripe/balance", params={"account_id": "gus"})).status_code == 403
        assert (await client.get("/stripe/balances")).status_code == 403
        adjust = await client.post("/stripe/balance/adjust", json={"account_id": user, "amount": 5, "reason": "x"})
        assert adjust.status_code == 403
    assert Decimal(0) == Decimal(str((await balance_of(shared_admin, user))["balance"]))
