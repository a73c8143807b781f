"""Notifications: signed webhooks from a durable outbox, retried after a receiver's 500, delivered once per
event id; event types switched off; email through SMTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from email import message_from_bytes
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from tests.billing.conftest import (
    BILLING_ENV,
    FakeStripe,
    checkout_completed,
    deliver,
    event,
    fund,
    settled,
)
from tests.conftest import ProxyServer, run_in_proxy, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import key_client

HI = [{"role": "user", "content": "hi"}]
HOOK_SECRET = "whsec_outbound_test"


class Receiver:
    """An operator's webhook endpoint: records deliveries; answers 500 to the first ``fail_first``."""

    def __init__(self) -> None:
        self.received: list[tuple[int, dict[str, str], bytes]] = []
        self.fail_first = 0
        self.hold: asyncio.Event | None = None  # while set, a delivery waits for it, then gets a 503
        self.arrived = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrived += 1
        if self.hold is not None:
            await self.hold.wait()
            self.received.append((503, dict(request.headers), body))
            return web.Response(status=503, text="held")
        status = 500 if self.fail_first > 0 else 200
        self.fail_first -= 1
        self.received.append((status, dict(request.headers), body))
        return web.Response(status=status, text="ok" if status == 200 else "receiver broke")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def reset(self) -> None:
        """Forget what was received and answer 200 again (a receiver one module's tests share)."""
        self.received.clear()
        self.fail_first = 0
        self.arrived = 0
        if self.hold is not None:
            self.hold.set()
            self.hold = None

    def delivered(self, account_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Events answered 200, by type (each verified against its signature); only those about
        ``account_id`` when given."""
        found: dict[str, list[dict[str, Any]]] = {}
        for status, headers, body in self.received:
            verify(headers, body)
            if status == 200:
                evt = orjson.loads(body)
                if account_id is None or (evt.get("account") or {}).get("id") == account_id:
                    found.setdefault(evt["type"], []).append(evt)
        return found


def verify(headers: dict[str, str], body: bytes) -> None:
    parts = dict(p.split("=", 1) for p in headers["Proxyllm-Signature"].split(","))
    assert abs(int(parts["t"]) - time.time()) < 300
    expected = hmac.new(HOOK_SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert headers["Proxyllm-Event-Id"] == orjson.loads(body)["id"]


class FakeSmtp:
    """Just enough SMTP to receive a message (no TLS, no auth)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        data = False
        lines: list[bytes] = []
        while line := await reader.readline():
            if data:
                if line == b".\r\n":
                    self.messages.append(b"".join(lines))
                    data, lines = False, []
                    writer.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"EHLO" or verb == b"HELO":
                writer.write(b"250 fake\r\n")
            elif verb == b"DATA":
                data = True
                writer.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    await found.start()
    yield found
    await found.stop()


def notifying_proxies(
    database_url: str, proxy_factory: Any, openai: FakeOpenAI, ollama: FakeOllama, receiver: Receiver, threshold: str
) -> Any:
    """Starts billing proxies that send their notifications to ``receiver`` (env overrides as keywords)."""

    async def make(**env: str) -> ProxyServer:
        config = standard_config(openai.api_base, ollama.url)
        full = {
            **BILLING_ENV,
            "DATABASE_URL": database_url,
            "PROXYLLM_WEBHOOK_URLS": receiver.url,
            "PROXYLLM_WEBHOOK_SECRET": HOOK_SECRET,
            "PROXYLLM_WEBHOOK_RETRY_BASE": "0.2",
            "STRIPE_LOW_BALANCE_THRESHOLD": threshold,
            **env,
        }
        server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env=full)
        return server

    return make


@pytest.fixture
def start(
    database_url: str,
    stripe_api: FakeStripe,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    receiver: Receiver,
) -> Any:
    return notifying_proxies(database_url, proxy_factory, openai_upstream, ollama_upstream, receiver, "0.75")


async def per_request_card(admin: httpx.AsyncClient, user: str) -> str:
    """A user charged exactly 0.50 per request (a rate card), so balances land where a test wants."""
    card = {"models": {"gpt-fake": {"per_request": "0.5"}}}
    assert (await admin.put("/billing/rate_cards/flat", json=card)).status_code == 200
    made = await admin.post("/user/new", json={"user_id": user, "user_email": f"{user}@example.com"})
    assert made.status_code == 200, made.text
    assert (await admin.post("/billing/pricing", json={"account_id": user, "rate_card": "flat"})).status_code == 200
    return str(made.json()["key"])


async def wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_balance_and_topup_events_are_signed_retried_and_delivered_once(
    start: Any, receiver: Receiver, stripe_api: FakeStripe
) -> None:
    receiver.fail_first = 1
    proxy = await start()
    async with key_client(proxy) as admin:
        key = await per_request_card(admin, "notified")
        await fund(admin, "notified", "1")
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
            for _ in range(2):
                resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                assert resp.status_code == 200, resp.text
                await settled(admin, "notified", proxy)
            refused = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
            assert refused.status_code == 402
        started = await admin.post(
            "/stripe/topup",
            json={"account_id": "notified", "amount": 20, "success_url": "https://x/ok", "cancel_url": "https://x/no"},
        )
        assert started.status_code == 200, started.text
        session_id = started.json()["checkout_session_id"]
        paid = event("checkout.session.completed", checkout_completed(session_id, 2000))
        assert (await deliver(admin, paid)).status_code == 200
        assert (await deliver(admin, paid)).status_code == 200  # Stripe's redelivery: nothing new
        # The crossing is counted on the proxy's own /metrics (one registry, not prometheus' global one).
        scraped = (await admin.get("/metrics")).text
        assert 'proxyllm_low_balance_events_total{account_type="user"} 1.0' in scraped
    wanted = {"balance.low", "balance.zero", "topup.credited"}
    await wait_for(lambda: wanted <= set(receiver.delivered()))
    delivered = receiver.delivered()
    assert {k: len(v) for k, v in delivered.items()} == {k: 1 for k in wanted}
    assert delivered["balance.zero"][0]["data"]["balance"] in ("0E-9", "0", "0.000000000")
    assert delivered["balance.low"][0]["account"] == {"type": "user", "id": "notified"}
    assert delivered["topup.credited"][0]["data"]["amount"] == "20"
    statuses = [status for status, _, _ in receiver.received]
    assert statuses.count(500) == 1 and statuses.count(200) == 3  # the refused one was sent again
    first_id = orjson.loads(receiver.received[0][2])["id"]
    assert [orjson.loads(b)["id"] for s, _, b in receiver.received].count(first_id) == 2

    # The same event raised again (a retried batch, another replica) is not queued or sent twice.
    async def raise_twice() -> None:
        notifier = proxy.runtime.billing.ledger.notifier  # type: ignore[union-attr]
        for _ in range(2):
            async with proxy.runtime.db.session() as session:
                await notifier.emit(session, "balance.low", about="same", account=("user", "notified"), data={})

    await asyncio.to_thread(run_in_proxy, proxy, raise_twice())
    await wait_for(lambda: len(receiver.delivered()["balance.low"]) == 2)
    await asyncio.sleep(1)
    assert len(receiver.delivered()["balance.low"]) == 2


async def test_a_stop_mid_delivery_leaves_the_notification_due_at_once(start: Any, receiver: Receiver) -> None:
    """A notification is claimed for 60 s (its lease) while it is sent; a proxy stopped before the receiver
    answered gives the claim back, so the next start delivers it at once instead of a minute later."""
    hold = receiver.hold = asyncio.Event()
    first = await start()

    async def raise_one() -> None:
        notifier = first.runtime.billing.ledger.notifier  # type: ignore[union-attr]
        async with first.runtime.db.session() as session:
            await notifier.emit(session, "balance.low", about="held", account=("user", "held"), data={})

    await asyncio.to_thread(run_in_proxy, first, raise_one())
    assert await wait_for(lambda: receiver.arrived >= 1)  # claimed, and in flight
    await asyncio.to_thread(first.stop)
    receiver.hold = None
    hold.set()
    await start()
    assert await wait_for(lambda: receiver.delivered("held").get("balance.low"), timeout=20)


async def test_budget_reached_and_switched_off_types(start: Any, receiver: Receiver) -> None:
    proxy = await start(PROXYLLM_NOTIFICATIONS_OFF="balance.low,topup.credited")
    async with key_client(proxy) as admin:
        await per_request_card(admin, "budgeted")
        await fund(admin, "budgeted", "1")
        limited = await admin.post("/key/generate", json={"user_id": "budgeted", "max_budget": 0.0000001})
        async with httpx.AsyncClient(
            base_url=proxy.url, headers={"authorization": f"Bearer {limited.json()['key']}"}
        ) as client:
            # The first request spends past the key's budget (and takes the balance under its threshold).
            assert (await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})).is_success
            await settled(admin, "budgeted", proxy)
            for _ in range(3):
                refused = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                assert refused.status_code == 400 and refused.json()["error"]["type"] == "budget_exceeded"
    await wait_for(lambda: "budget.reached" in receiver.delivered())
    await asyncio.sleep(1.5)
    delivered = receiver.delivered()
    assert list(delivered) == ["budget.reached"]  # balance.low is switched off
    assert len(delivered["budget.reached"]) == 1  # once per key and day
    assert delivered["budget.reached"][0]["data"]["user_id"] == "budgeted"


async def test_email_through_smtp(start: Any, receiver: Receiver) -> None:
    smtp = FakeSmtp()
    await smtp.start()
    try:
        proxy = await start(
            PROXYLLM_SMTP_HOST="127.0.0.1",
            PROXYLLM_SMTP_PORT=str(smtp.port),
            PROXYLLM_SMTP_TLS="none",
            PROXYLLM_SMTP_FROM="billing@proxy.example",
        )
        async with key_client(proxy) as admin:
            key = await per_request_card(admin, "mailed")
            await fund(admin, "mailed", "1")
            async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
                resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                assert resp.is_success
        await wait_for(lambda: smtp.messages)
        mail = message_from_bytes(smtp.messages[0])
        assert mail["To"] == "mailed@example.com" and mail["Subject"] == "Your balance is low"
    finally:
        await smtp.stop()


@pytest.mark.parametrize(
    "env",
    [
        {"PROXYLLM_WEBHOOK_SECRET": ""},
        {"PROXYLLM_WEBHOOK_URLS": "ftp://nope"},
        {"PROXYLLM_NOTIFICATIONS_OFF": "balance.sometimes"},
        {"PROXYLLM_SMTP_HOST": "127.0.0.1"},
    ],
)
def test_bad_notification_settings_refuse_to_start(env: dict[str, str]) -> None:
    from proxyllm.billing.notify import NotifyConfigError, notify_settings

    base = {"PROXYLLM_WEBHOOK_URLS": "https://hooks.example/x", "PROXYLLM_WEBHOOK_SECRET": "s"}
    with pytest.raises(NotifyConfigError):
        notify_settings({**base, **env})
