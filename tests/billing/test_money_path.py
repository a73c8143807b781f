"""The money path against a hostile customer: bounded reservations, bounded inputs, honest webhooks.

Each runs on SQLite and on PostgreSQL (``shared_proxy``, one per module, or ``database_url``) with the real
spend writer and the real HTTP server; prices are gpt-fake's (1e-6 per prompt token, 2e-6 per completion
token). Tests on the shared proxy use accounts of their own.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.billing.conftest import (
    balance_of,
    checkout_completed,
    deliver,
    event,
    fund,
    ledger_invariant,
    settled,
    unique,
)
from tests.conftest import ProxyServer
from tests.fakes.openai_upstream import FakeOpenAI

HI = [{"role": "user", "content": "hi"}]


async def user_key(admin: httpx.AsyncClient, user_id: str, **fields: Any) -> str:
    resp = await admin.post("/key/generate", json={"user_id": user_id, **fields})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["key"])


def customer(proxy: ProxyServer, key: str) -> httpx.AsyncClient:
    """One client for a test's many requests (making an httpx client costs ~20 ms: most of sixty requests)."""
    return httpx.AsyncClient(base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {key}"})


async def chat(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI, **body})


async def post_chat(proxy: ProxyServer, key: str, body: dict[str, Any]) -> httpx.Response:
    async with customer(proxy, key) as client:
        return await chat(client, body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", -100000),
        ("max_tokens", 0),
        ("max_tokens", 2**62),
        ("max_completion_tokens", -1),
        ("n", 0),
        ("n", 10_000),
        ("num_predict", -5),
        ("max_tokens", 1.5),
        ("max_tokens", "100"),
        ("user", "u" * 300),
        ("user", "ann\x00"),
    ],
)
async def test_cost_driving_and_stored_fields_are_bounded(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, field: str, value: Any
) -> None:
    user = unique("bounds")
    key = await user_key(shared_admin, user)
    await fund(shared_admin, user, "1")
    resp = await post_chat(shared_proxy, key, {field: value})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == field, error
    assert (await settled(shared_admin, user, shared_proxy))["balance"] == 1


async def test_a_model_name_too_long_for_the_spend_log_is_refused(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    user = unique("longmodel")
    key = await user_key(shared_admin, user)
    resp = await post_chat(shared_proxy, key, {"model": "m" * 300})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "model", resp.text


async def test_negative_max_tokens_in_flight_cannot_unlock_an_empty_balance(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    """The attack of the review: negative reservations in flight let normal requests through."""
    user = unique("neg")
    key = await user_key(shared_admin, user)
    await fund(shared_admin, user, "0.0001")  # covers one or two normal requests, not forty
    openai_upstream.delay = 0.2
    async with customer(shared_proxy, key) as client:
        hostile = [chat(client, {"max_tokens": -100000}) for _ in range(20)]
        normal = [chat(client, {"max_tokens": 10}) for _ in range(40)]
        results = await asyncio.gather(*hostile, *normal)
    assert all(r.status_code == 400 for r in results[:20])
    served = sum(r.status_code == 200 for r in results[20:])
    assert all(r.status_code in (200, 402) for r in results[20:])
    # A served request costs 0.000011 (1 input token, 5 output tokens): 0.0001 pays for nine at most, however
    # they interleave (four reservations fit at once; more get through only as earlier ones settle). Negative
    # reservations that unlocked the balance would let all forty through.
    assert served <= 9, served
    info = await settled(shared_admin, user, shared_proxy)
    assert info["balance"] >= 0, info
    await ledger_invariant(shared_proxy)


async def test_a_long_answer_without_max_tokens_cannot_overdraw(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    """No max_tokens, a 3,000-token answer: the proxy reserves its default output (100 here) and sends
    that limit upstream, so the answer cannot cost more than was reserved."""
    user = unique("long")
    key = await user_key(shared_admin, user)
    await fund(shared_admin, user, "0.001")
    openai_upstream.reply_text = " ".join(["word"] * 3000)
    statuses = []
    async with customer(shared_proxy, key) as client:
        for _ in range(8):
            resp = await chat(client, {})
            statuses.append(resp.status_code)
    assert 402 in statuses and 200 in statuses, statuses
    sent = [r.body for r in openai_upstream.requests if r.path.endswith("/chat/completions")]
    assert sent and all(b.get("max_tokens") == 100 for b in sent), [b.get("max_tokens") for b in sent]
    info = await settled(shared_admin, user, shared_proxy)
    assert info["balance"] >= 0, info
    await ledger_invariant(shared_proxy)


async def test_n_choices_are_reserved(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    user = unique("many")
    key = await user_key(shared_admin, user)
    await fund(shared_admin, user, "0.002")
    openai_upstream.reply_text = " ".join(["word"] * 50)
    async with customer(shared_proxy, key) as client:
        results = await asyncio.gather(*(chat(client, {"n": 8, "max_tokens": 50}) for _ in range(10)))
    statuses = [r.status_code for r in results]
    assert set(statuses) <= {200, 402} and 402 in statuses, statuses
    info = await settled(shared_admin, user, shared_proxy)
    assert info["balance"] >= 0, info  # 8 x 50 output tokens per request were reserved, not 50


async def test_ollama_unlimited_num_predict_means_the_model_limit(
    proxy_factory: Any, ollama_upstream: Any, openai_upstream: FakeOpenAI
) -> None:
    from tests.conftest import MASTER_KEY

    config = f"""
model_list:
  - model_name: llama3
    litellm_params: {{model: ollama_chat/llama3, api_base: "{ollama_upstream.url}"}}
    model_info: {{max_output_tokens: 2048}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    proxy = await asyncio.to_thread(proxy_factory, config)
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as c:
        ok = await c.post("/v1/chat/completions", json={"model": "llama3", "messages": HI, "num_predict": -1})
        too_many = await c.post("/v1/chat/completions", json={"model": "llama3", "messages": HI, "max_tokens": 4096})
    assert ok.status_code == 200, ok.text
    assert ollama_upstream.requests[-1].body["options"]["num_predict"] == 2048
    assert too_many.status_code == 400 and "2048" in too_many.json()["error"]["message"]


async def test_a_cache_hit_reserves_and_charges_nothing(
    proxy_factory: Any, database_url: str, stripe_api: Any, openai_upstream: FakeOpenAI, ollama_upstream: Any
) -> None:
    from tests.billing.conftest import BILLING_ENV
    from tests.conftest import MASTER_KEY, standard_config

    config = standard_config(openai_upstream.api_base, ollama_upstream.url, "litellm_settings:\n  cache: true\n")
    proxy = await asyncio.to_thread(proxy_factory, config, env={**BILLING_ENV, "DATABASE_URL": database_url})
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = await user_key(admin, "cached")
        await fund(admin, "cached", "0.001")
        first = await post_chat(proxy, key, {"max_tokens": 10})
        after_first = (await settled(admin, "cached", proxy))["balance"]
        hits = [await post_chat(proxy, key, {"max_tokens": 10}) for _ in range(5)]
        assert all(h.headers.get("x-litellm-cache-key") for h in hits)
        await fund(admin, "cached", "-0.001")  # nothing left to reserve from: hits still answer
        late = await post_chat(proxy, key, {"max_tokens": 10})
        info = await settled(admin, "cached", proxy)
    assert first.status_code == 200 and all(h.status_code == 200 for h in hits), [h.text for h in hits]
    assert late.status_code == 200 and late.headers.get("x-litellm-cache-key"), late.text
    assert Decimal(str(info["balance"])) == Decimal(str(after_first)) - Decimal("0.001")


# -- webhooks: only what was paid, in the ledger's currency ----------------------------------------


async def _topup(admin: httpx.AsyncClient, user_id: str) -> str:
    resp = await admin.post(
        "/stripe/topup",
        json={
            "account_id": user_id,
            "amount": 10,
            "success_url": "https://example.com/ok",
            "cancel_url": "https://example.com/no",
        },
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["checkout_session_id"])


async def test_a_session_paid_in_another_currency_is_not_credited(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    user = unique("yen")
    sid = await _topup(shared_admin, user)
    paid = {**checkout_completed(sid, 1000), "currency": "jpy"}
    resp = await deliver(shared_admin, event("checkout.session.completed", paid))
    assert resp.status_code == 200 and "not credited" in resp.json()["result"], resp.text
    assert (await balance_of(shared_admin, user))["balance"] == 0


@pytest.mark.parametrize(
    "amount", [-1000, "1000", 1.5, True, 10**15], ids=["negative", "string", "float", "bool", "huge"]
)
async def test_a_malformed_amount_is_never_credited(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, amount: Any
) -> None:
    user = unique("odd")
    sid = await _topup(shared_admin, user)
    resp = await deliver(
        shared_admin, event("checkout.session.completed", {**checkout_completed(sid, 0), "amount_total": amount})
    )
    assert resp.status_code == 200, resp.text  # answered, so Stripe does not retry it for days
    assert resp.json()["result"].startswith("ignored: malformed"), resp.text
    assert (await balance_of(shared_admin, user))["balance"] == 0


async def test_malformed_metadata_and_fields_are_ignored_not_500(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    bad = [
        checkout_completed("cs_meta", 1000)
        | {"metadata": {"proxyllm_account_type": "admin", "proxyllm_account_id": "x"}},
        checkout_completed("cs_meta2", 1000) | {"metadata": "not an object"},
        checkout_completed("cs_nul\x00", 1000),
        {"id": ["cs_list"], "amount_total": 100},
    ]
    for obj in bad:
        resp = await deliver(shared_admin, event("checkout.session.completed", obj))
        assert resp.status_code == 200 and resp.json()["result"].startswith("ignored"), resp.text
    resp = await deliver(
        shared_admin, {**event("charge.refunded", {"id": "ch_1", "amount_refunded": -5}), "created": "x"}
    )
    assert resp.status_code == 200 and resp.json()["result"].startswith("ignored"), resp.text


async def test_a_signature_from_the_future_is_refused(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    user = unique("future")
    sid = await _topup(shared_admin, user)
    resp = await deliver(
        shared_admin,
        event("checkout.session.completed", checkout_completed(sid, 1000)),
        timestamp=int(time.time()) + 3600,
    )
    assert resp.status_code == 400 and "future" in resp.json()["error"]["message"], resp.text
    assert (await balance_of(shared_admin, user))["balance"] == 0


async def test_an_sdk_client_sees_402_not_500_when_the_estimate_exceeds_the_balance(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    user = unique("sdk402")
    key = await user_key(shared_admin, user)
    await fund(shared_admin, user, "0.00001")
    client = openai.AsyncOpenAI(base_url=shared_proxy.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="gpt-fake", messages=HI, n=8, max_tokens=1000)  # type: ignore[arg-type]
    assert caught.value.status_code == 402
