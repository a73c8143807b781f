"""Billing tests: Stripe's HTTP API mocked with respx under the real stripe SDK; webhooks signed for real."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import respx

from tests.conftest import ProxyServer, run_in_proxy, standard_config
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
    # Concurrency tests here check amounts, not how fast a loaded CI machine's database answers: give the
    # prepaid reservation more than its 2 s default (tests/accounts/test_money_resilience.py checks that).
    "PROXYLLM_PREPAID_TIMEOUT_SECONDS": "15",
}


class FakeStripe:
    """What the proxy asked Stripe for, and what Stripe (respx) answered."""

    def __init__(self, router: respx.MockRouter) -> None:
        self._customer_serial = 0  # never reset: customer ids stay unique on a proxy tests share
        self.reset()
        router.post(f"{STRIPE}/v1/customers").mock(side_effect=self._customer)
        router.get(url__regex=rf"{STRIPE}/v1/customers/(?P<cid>[^/]+)$").mock(side_effect=self._get_customer)
        router.post(f"{STRIPE}/v1/checkout/sessions").mock(side_effect=self._session)
        router.post(f"{STRIPE}/v1/billing/meter_events").mock(side_effect=self._meter_event)
        router.post(f"{STRIPE}/v2/billing/meter_event_session").mock(side_effect=self._meter_session)
        router.post(f"{STRIPE}/v2/billing/meter_event_stream").mock(side_effect=self._meter_stream)
        # Saved cards, off-session payments and the billing portal.
        router.post(f"{STRIPE}/v1/payment_intents").mock(side_effect=self._payment_intent)
        router.post(f"{STRIPE}/v1/setup_intents").mock(side_effect=self._setup_intent)
        router.post(f"{STRIPE}/v1/billing_portal/sessions").mock(side_effect=self._portal)
        router.route(host="127.0.0.1").pass_through()

    def reset(self) -> None:
        """Forget what was asked and answered, and answer normally again (each test starts from this)."""
        self.customers: list[dict[str, Any]] = []
        self.customer_ids: list[str] = []  # the ids answered for ``customers``, in order
        self.sessions: list[dict[str, Any]] = []
        self.known_customers = {"cus_linked", "cus_sub"}
        self.meter_events: list[dict[str, Any]] = []  # accepted ones
        self.meter_attempts = 0
        self.meter_plan: list[int] = []  # statuses to answer next (then 200)
        self.meter_down = False
        self.meter_hang = False  # meter events get no answer (a Stripe that stalls)
        self.stream_batches: list[tuple[str, list[dict[str, Any]]]] = []
        self.payment_intents: list[dict[str, Any]] = []  # created ones, in order
        self.payment_attempts = 0  # calls, including replays of an idempotency key
        self.payment_outcome = "succeeded"  # succeeded | declined | requires_action
        self._idempotent: dict[str, httpx.Response] = {}
        self.setup_intents: list[dict[str, Any]] = []
        self.portal_sessions: list[dict[str, Any]] = []

    def _get_customer(self, request: httpx.Request, cid: str) -> httpx.Response:
        if cid in self.known_customers:
            return httpx.Response(200, json={"id": cid, "object": "customer"})
        return httpx.Response(
            404,
            json={
                "error": {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": f"No such customer: '{cid}'",
                    "param": "id",
                }
            },
        )

    def _meter_event(self, request: httpx.Request) -> httpx.Response | Coroutine[Any, Any, httpx.Response]:
        self.meter_attempts += 1
        if self.meter_hang:
            return self._stall()
        form = dict(httpx.QueryParams(request.content.decode()))
        status = 503 if self.meter_down else (self.meter_plan.pop(0) if self.meter_plan else 200)
        if status != 200:
            kind = "invalid_request_error" if status == 400 else "api_error"
            return httpx.Response(status, json={"error": {"type": kind, "message": f"meter event refused ({status})"}})
        self.meter_events.append(form)
        return httpx.Response(
            200,
            json={
                "object": "billing.meter_event",
                "event_name": form["event_name"],
                "identifier": form["identifier"],
                "timestamp": int(form["timestamp"]),
                "created": int(time.time()),
                "livemode": False,
                "payload": {},
            },
        )

    @staticmethod
    async def _stall() -> httpx.Response:
        await asyncio.sleep(3600)  # on the proxy's loop: cancelled when its sender stops
        return httpx.Response(503)

    def _meter_session(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "object": "v2.billing.meter_event_session",
                "id": "mes_1",
                "authentication_token": "mes_token_1",
                "created": "2026-11-24T00:00:00.000Z",
                "expires_at": "2099-01-01T00:00:00.000Z",
                "livemode": False,
            },
        )

    def _meter_stream(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        self.stream_batches.append((request.headers.get("authorization", ""), body["events"]))
        return httpx.Response(200, json={})

    def _payment_intent(self, request: httpx.Request) -> httpx.Response:
        self.payment_attempts += 1
        key = request.headers.get("idempotency-key")
        if key and key in self._idempotent:
            return self._idempotent[key]  # Stripe replays the first answer for a repeated key
        form = dict(httpx.QueryParams(request.content.decode()))
        assert form["off_session"] == "true" and form["confirm"] == "true", form
        pid = f"pi_{uuid.uuid4().hex[:14]}"
        metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
        intent = {
            "id": pid,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "customer": form["customer"],
            "payment_method": form["payment_method"],
            "metadata": metadata,
            "receipt_email": form.get("receipt_email"),
            "idempotency_key": key,
        }
        if self.payment_outcome == "declined":
            response = httpx.Response(
                402,
                json={
                    "error": {
                        "type": "card_error",
                        "code": "card_declined",
                        "decline_code": "insufficient_funds",
                        "message": "Your card has insufficient funds.",
                        "payment_intent": {**intent, "status": "requires_payment_method"},
                    }
                },
            )
        else:
            status = "requires_action" if self.payment_outcome == "requires_action" else "succeeded"
            intent["status"] = status
            intent["amount_received"] = intent["amount"] if status == "succeeded" else 0
            response = httpx.Response(200, json=intent)
        self.payment_intents.append(intent)
        if key:
            self._idempotent[key] = response
        return response

    def _setup_intent(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.setup_intents.append(form)
        sid = f"seti_{uuid.uuid4().hex[:12]}"
        return httpx.Response(
            200,
            json={"id": sid, "object": "setup_intent", "client_secret": f"{sid}_secret_x", "usage": form["usage"]},
        )

    def _portal(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.portal_sessions.append(form)
        return httpx.Response(
            200,
            json={
                "id": f"bps_{uuid.uuid4().hex[:10]}",
                "object": "billing_portal.session",
                "customer": form["customer"],
                "return_url": form["return_url"],
                "url": f"https://billing.stripe.com/p/session/test_{uuid.uuid4().hex[:10]}",
            },
        )

    def _customer(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.customers.append(form)
        self._customer_serial += 1
        self.customer_ids.append(f"cus_{self._customer_serial}")
        return httpx.Response(200, json={"id": self.customer_ids[-1], "object": "customer", **form})

    def _session(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.sessions.append(form)
        sid = f"cs_test_{uuid.uuid4().hex[:10]}"
        return httpx.Response(
            200,
            json={
                "id": sid,
                "object": "checkout.session",
                "mode": form.get("mode", "payment"),
                "url": f"https://checkout.stripe.com/c/pay/{sid}",
            },
        )


@pytest.fixture(scope="module")
def module_stripe_api() -> Iterator[FakeStripe]:
    """Stripe's API (respx), mocked for the rest of the module once a test asks for it: one router, so a
    module-shared proxy and a test's own proxy both reach it (respx asks routers in the order they started)."""
    with respx.mock(assert_all_called=False) as router:
        yield FakeStripe(router)


@pytest.fixture(autouse=True)
def _fresh_stripe(request: pytest.FixtureRequest) -> None:
    """Every test on a module's Stripe mock starts from normal answers, whether or not it asks for
    ``stripe_api`` itself (a shared proxy reaches the mock too)."""
    if "module_stripe_api" in request.fixturenames:
        request.getfixturevalue("module_stripe_api").reset()


@pytest.fixture
def stripe_api(module_stripe_api: FakeStripe) -> FakeStripe:
    """The module's Stripe mock with nothing recorded yet and its normal answers."""
    module_stripe_api.reset()
    return module_stripe_api


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


@pytest.fixture(scope="module")
async def shared_proxy(
    module_database_url: str,
    module_stripe_api: FakeStripe,
    module_proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> ProxyServer:
    """``proxy``, shared by the tests of one module (SQLite and PostgreSQL): for tests that use accounts of
    their own (unique ids) and assert nothing about anyone else's. Ask for ``stripe_api`` too when a test
    reads what Stripe was sent (it starts empty for each test)."""
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory, config, env={**BILLING_ENV, "DATABASE_URL": module_database_url}
    )
    return server


def unique(prefix: str) -> str:
    """An account id no other test of a shared proxy uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


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


async def settled(admin: httpx.AsyncClient, user_id: str, *flush: ProxyServer) -> dict[str, Any]:
    """The balance once no request holds a reservation (settlement runs just after each response, in the
    spend writer's next batch). The writers of the proxies in ``flush`` write their batch before each look
    instead of at their next round (every second)."""
    for _ in range(600):  # generous: a loaded CI machine settles 100 requests slowly
        for proxy in flush:
            await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
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

    from proxyllm.db.tables_billing import BillingAccount, LedgerEntry

    async def check() -> dict[tuple[str, str], Decimal]:
        # One statement, so balances and entries come from one snapshot even while settlements commit.
        entries = (
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .where(
                LedgerEntry.account_type == BillingAccount.account_type,
                LedgerEntry.account_id == BillingAccount.account_id,
            )
            .scalar_subquery()
        )
        async with proxy.runtime.db.session() as session:
            rows = (
                await session.execute(
                    select(BillingAccount.account_type, BillingAccount.account_id, BillingAccount.balance, entries)
                )
            ).all()
        result = {}
        for kind, ident, balance, total in rows:
            total = Decimal(total)  # typed as the Money column: already dollars
            assert balance == total, ((kind, ident), balance, total)
            result[(kind, ident)] = balance
        return result

    balances: dict[tuple[str, str], Decimal] = await asyncio.to_thread(run_in_proxy, proxy, check())
    return balances
