"""Billing tests: Stripe's HTTP API mocked with respx under the real stripe SDK; webhooks signed for real."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import respx

from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

STRIPE = "https://stripe.test"
WEBHOOK_SECRET = "whsec_test_secret"
BILLING_ENV = {
    "STRIPE_API_KEY": "sk_test_not_a_real_key",
    "STRIPE_USE_PREPAID_BALANCE": "true",
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "STRIPE_API_BASE": STRIPE,
    "STRIPE_DEFAULT_MAX_TOKENS": "100",
}


class FakeStripe:
    """What the proxy asked Stripe for, and what Stripe (respx) answered."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.customers: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []
        router.post(f"{STRIPE}/v1/customers").mock(side_effect=self._customer)
        router.post(f"{STRIPE}/v1/checkout/sessions").mock(side_effect=self._session)
        router.route(host="127.0.0.1").pass_through()

    def _customer(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.customers.append(form)
        return httpx.Response(200, json={"id": f"cus_{len(self.customers)}", "object": "customer", **form})

    def _session(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.sessions.append(form)
        sid = f"cs_test_{uuid.uuid4().hex[:10]}"
        return httpx.Response(
            200,
            json={
                "id": sid,
                "object": "checkout.session",
                "mode": "payment",
                "url": f"https://checkout.stripe.com/c/pay/{sid}",
            },
        )


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeStripe(router)


@pytest.fixture
async def proxy(
    database_url: str,
    stripe_api: FakeStripe,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> ProxyServer:
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(
        proxy_factory, config, env={**BILLING_ENV, "DATABASE_URL": database_url}
    )
    return server


@pytest.fixture
async def admin(proxy: ProxyServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"}
    ) as client:
        yield client


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:12]}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


async def deliver(client: httpx.AsyncClient, evt: dict[str, Any], **sign_kwargs: Any) -> httpx.Response:
    payload = orjson.dumps(evt)
    return await client.post(
        "/stripe/webhook",
        content=payload,
        headers={"stripe-signature": sign(payload, **sign_kwargs), "content-type": "application/json"},
    )


def checkout_completed(session_id: str, cents: int, *, paid: bool = True, pi: str = "pi_1") -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": cents,
        "currency": "usd",
        "payment_status": "paid" if paid else "unpaid",
        "payment_intent": pi,
        "mode": "payment",
    }


async def user_key(admin: httpx.AsyncClient, user_id: str) -> str:
    resp = await admin.post("/key/generate", json={"user_id": user_id})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["key"])


async def balance_of(admin: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    resp = await admin.get("/stripe/balance", params={"account_id": user_id})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def settled(admin: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    """The balance once no request holds a reservation (settlement runs just after each response)."""
    for _ in range(100):
        info = await balance_of(admin, user_id)
        if info["reserved"] == 0:
            return info
        await asyncio.sleep(0.05)
    raise AssertionError(f"reservations of {user_id} never settled: {info}")


async def fund(admin: httpx.AsyncClient, user_id: str, amount: str) -> None:
    resp = await admin.post("/stripe/balance/adjust", json={"account_id": user_id, "amount": amount, "reason": "test"})
    assert resp.status_code == 200, resp.text


async def ledger_invariant(proxy: ProxyServer) -> dict[tuple[str, str], Decimal]:
    """Assert balance == sum of ledger entries for every account; return the balances."""
    from sqlalchemy import func, select

    from proxyllm.billing.tables import BillingAccount, LedgerEntry

    async def check() -> dict[tuple[str, str], Decimal]:
        async with proxy.runtime.db.session() as session:
            accounts = (await session.execute(select(BillingAccount))).scalars().all()
            sums = dict(
                ((t, i), Decimal(s))
                for t, i, s in (
                    await session.execute(
                        select(LedgerEntry.account_type, LedgerEntry.account_id, func.sum(LedgerEntry.amount)).group_by(
                            LedgerEntry.account_type, LedgerEntry.account_id
                        )
                    )
                ).all()
            )
        result = {}
        for account in accounts:
            key = (account.account_type, account.account_id)
            assert account.balance == sums.get(key, Decimal(0)), (key, account.balance, sums.get(key))
            result[key] = account.balance
        return result

    balances: dict[tuple[str, str], Decimal] = await asyncio.to_thread(run_in_proxy, proxy, check())
    return balances
