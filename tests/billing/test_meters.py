"""Billing Meters: a durable outbox that reports every request's usage to Stripe exactly once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest

from proxyllm.billing.meters import MeterHook
from tests.billing.conftest import BILLING_ENV, FakeStripe
from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import eventually

HI = [{"role": "user", "content": "hi"}]
METER_ENV = {
    **BILLING_ENV,
    "STRIPE_USE_PREPAID_BALANCE": "",
    "STRIPE_BILLING_METHOD": "meters",
    "STRIPE_METER_EVENT_NAME": "llm_tokens",
    "STRIPE_METER_RETRY_BASE": "0.2",
    "STRIPE_METER_RATE": "2000",
}


@pytest.fixture
def start(
    database_url: str,
    stripe_api: FakeStripe,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> Any:
    async def make(**env: str) -> ProxyServer:
        config = standard_config(openai_upstream.api_base, ollama_upstream.url)
        server: ProxyServer = await asyncio.to_thread(
            proxy_factory, config, env={**METER_ENV, "DATABASE_URL": database_url, **env}
        )
        return server

    return make


async def linked_key(proxy: ProxyServer, user_id: str = "metered", customer: str = "cus_linked") -> str:
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        resp = await admin.post("/user/new", json={"user_id": user_id, "stripe_customer_id": customer})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["key"])


async def outbox(proxy: ProxyServer, **params: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        resp = await admin.get("/stripe/meter-events", params=params)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def nudge(proxy: ProxyServer) -> None:
    """Write the spend writer's batch (it queues the meter events) and send what is due, now instead of at
    the writer's and the sender's next rounds (a second each). Claims are leased: the sender's own loop
    never sends an event this sends too."""
    sender = next(hook for hook in proxy.runtime.gateway.hooks if isinstance(hook, MeterHook)).sender

    async def now() -> None:
        await proxy.runtime.spend.flush()
        await sender.drain_once()

    await asyncio.to_thread(run_in_proxy, proxy, now())


async def wait_counts(
    proxy: ProxyServer, timeout: float = 60, *, by_itself: bool = False, **expected: int
) -> dict[str, int]:
    """The outbox's counts once they are ``expected``; the proxy is nudged before each look unless it is to
    get there ``by_itself`` (its own writer and sender)."""
    deadline = time.monotonic() + timeout
    while True:
        if not by_itself:
            await nudge(proxy)
        counts: dict[str, int] = (await outbox(proxy, limit=1))["counts"]
        if all(counts[k] == v for k, v in expected.items()) or time.monotonic() > deadline:
            assert {k: counts[k] for k in expected} == expected, counts
            return counts
        await asyncio.sleep(0.1)


async def test_usage_is_reported_with_identifier_and_timestamp(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start()
    key = await linked_key(proxy)
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
    await wait_counts(proxy, by_itself=True, sent=1)
    sent = stripe_api.meter_events[0]
    assert sent["event_name"] == "llm_tokens"
    assert sent["identifier"] == resp.headers["x-litellm-call-id"]
    assert sent["payload[stripe_customer_id]"] == "cus_linked"
    assert sent["payload[value]"] == "6" and sent["payload[model]"] == "gpt-fake"
    assert abs(int(sent["timestamp"]) - time.time()) < 60


async def test_input_and_output_as_separate_events(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start(STRIPE_METER_VALUE="input_output")
    key = await linked_key(proxy)
    await openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key).chat.completions.create(
        model="gpt-fake", messages=HI
    )
    await wait_counts(proxy, sent=2)
    by_type = {e["payload[token_type]"]: e for e in stripe_api.meter_events}
    assert by_type["input"]["payload[value]"] == "1" and by_type["output"]["payload[value]"] == "5"
    assert by_type["input"]["identifier"].endswith(":input")


async def test_server_error_is_retried_with_the_same_identifier(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start()
    stripe_api.meter_plan = [500]
    key = await linked_key(proxy)
    await openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key).chat.completions.create(
        model="gpt-fake", messages=HI
    )
    await wait_counts(proxy, sent=1)
    assert stripe_api.meter_attempts == 2 and len(stripe_api.meter_events) == 1
    row = (await outbox(proxy))["data"][0]
    assert row["attempts"] == 1 and row["status"] == "sent"


async def test_client_error_marks_the_event_failed(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start()
    stripe_api.meter_plan = [400]
    key = await linked_key(proxy)
    await openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key).chat.completions.create(
        model="gpt-fake", messages=HI
    )
    await wait_counts(proxy, failed=1)
    row = (await outbox(proxy, status="failed"))["data"][0]
    assert row["last_error"].startswith("400") and stripe_api.meter_attempts == 1


@pytest.mark.slow
@pytest.mark.timeout(400)  # a thousand requests through the proxy, on a shared CI machine
async def test_a_thousand_requests_while_stripe_is_down(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start()
    key = await linked_key(proxy)
    stripe_api.meter_down = True
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    gate = asyncio.Semaphore(50)

    async def one() -> None:
        async with gate:
            await client.chat.completions.create(model="gpt-fake", messages=HI)

    await asyncio.gather(*(one() for _ in range(1000)))
    await wait_counts(proxy, pending=1000, sent=0)
    stripe_api.meter_down = False
    await wait_counts(proxy, timeout=90, by_itself=True, pending=0, sent=1000)
    identifiers = [e["identifier"] for e in stripe_api.meter_events]
    assert len(identifiers) == len(set(identifiers)) == 1000


async def test_restart_resumes_the_backlog(start: Any, stripe_api: FakeStripe) -> None:
    first = await start()
    key = await linked_key(first)
    stripe_api.meter_down = True
    client = openai.AsyncOpenAI(base_url=first.url + "/v1", api_key=key)
    for _ in range(5):
        await client.chat.completions.create(model="gpt-fake", messages=HI)
    await wait_counts(first, pending=5)
    await asyncio.to_thread(first.stop)
    stripe_api.meter_down = False
    second = await start()
    await wait_counts(second, by_itself=True, pending=0, sent=5)


async def test_a_stop_mid_send_leaves_the_batch_due_at_once(start: Any, stripe_api: FakeStripe) -> None:
    """The sender claims a batch for 60 s (its lease) before sending; a proxy stopped while Stripe has not
    answered gives the claims back, so the next start sends them at once instead of a minute later."""
    first = await start()
    key = await linked_key(first)
    stripe_api.meter_hang = True
    client = openai.AsyncOpenAI(base_url=first.url + "/v1", api_key=key)
    for _ in range(3):
        await client.chat.completions.create(model="gpt-fake", messages=HI)
    await eventually(lambda: stripe_api.meter_attempts >= 1)  # a batch is claimed and in flight
    await asyncio.to_thread(first.stop)
    stripe_api.meter_hang = False
    second = await start()
    await wait_counts(second, timeout=20, by_itself=True, pending=0, sent=3)


async def test_v2_stream_batches_events(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start(STRIPE_METER_V2="true")
    key = await linked_key(proxy)
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key)
    await asyncio.gather(*(client.chat.completions.create(model="gpt-fake", messages=HI) for _ in range(7)))
    await wait_counts(proxy, sent=7)
    events = [e for _, batch in stripe_api.stream_batches for e in batch]
    assert len(events) == 7 and all(auth == "Bearer mes_token_1" for auth, _ in stripe_api.stream_batches)
    assert events[0]["payload"]["stripe_customer_id"] == "cus_linked" and events[0]["timestamp"].endswith("Z")


async def test_events_older_than_stripes_window_fail(start: Any, stripe_api: FakeStripe) -> None:
    from proxyllm.db.tables_billing import MeterEvent

    proxy = await start()

    async def old_event() -> int:
        async with proxy.runtime.db.session() as session:
            session.add(
                MeterEvent(
                    identifier="old-1",
                    account_type="user",
                    account_id="u",
                    stripe_customer_id="cus",
                    event_name="llm_tokens",
                    value=3,
                    dimensions={},
                    status="pending",
                    attempts=0,
                    timestamp=int(time.time()) - 36 * 86400,
                )
            )
        return 0

    await asyncio.to_thread(run_in_proxy, proxy, old_event())
    await wait_counts(proxy, failed=1)
    row = (await outbox(proxy, status="failed"))["data"][0]
    assert "35-day" in row["last_error"] and stripe_api.meter_attempts == 0


async def test_unlinked_account_is_refused_unless_allowed(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start()
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = (await admin.post("/user/new", json={"user_id": "nolink"})).json()["key"]
        bad = await admin.post("/user/update", json={"user_id": "nolink", "stripe_customer_id": "cus_missing"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "stripe_customer_id"
    with pytest.raises(openai.APIStatusError) as info:
        await openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model="gpt-fake", messages=HI
        )
    assert info.value.status_code == 402 and "not set up for billing" in info.value.message

    relaxed = await start(STRIPE_ALLOW_UNLINKED="true")
    async with httpx.AsyncClient(base_url=relaxed.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = (await admin.post("/user/new", json={"user_id": "nolink2"})).json()["key"]
    await openai.AsyncOpenAI(base_url=relaxed.url + "/v1", api_key=key).chat.completions.create(
        model="gpt-fake", messages=HI
    )
    await asyncio.sleep(1.5)
    assert (await outbox(relaxed))["counts"] == {"pending": 0, "sent": 0, "failed": 0}


async def test_end_users_are_linked_with_customer_endpoints(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start(STRIPE_CHARGE_BY="end_user_id")
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        made = await admin.post("/customer/new", json={"user_id": "shopper-1", "stripe_customer_id": "cus_linked"})
        assert made.status_code == 200 and made.json()["stripe_customer_id"] == "cus_linked"
        key = (await admin.post("/key/generate", json={})).json()["key"]
        info = await admin.get("/customer/info", params={"end_user_id": "shopper-1"})
        assert info.json()["stripe_customer_id"] == "cus_linked"
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)
    await client.chat.completions.create(model="gpt-fake", messages=HI, user="shopper-1")
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="gpt-fake", messages=HI, user="stranger")
    await wait_counts(proxy, sent=1)
    assert stripe_api.meter_events[0]["payload[stripe_customer_id]"] == "cus_linked"
