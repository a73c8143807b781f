"""End users on requests: their budgets and limits enforced, blocked ones refused, spend recorded.

Runs on SQLite and PostgreSQL (the ``proxy`` fixture of this folder, or ``shared_proxy`` for the cases whose
end users are their own and that read no global rows)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.accounts.conftest import HI, new_key, sdk
from tests.conftest import ProxyServer, run_in_proxy

# The fake answers 5 completion tokens for a 1-word prompt: 1 x 0.000001 + 5 x 0.000002.
COST = Decimal("0.000011")


async def flush(proxy: ProxyServer) -> None:
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())


async def info(admin: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    resp = await admin.get("/end_user/info", params={"end_user_id": user_id})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_shared_budget_holds_per_end_user_and_spend_is_recorded(
    proxy: ProxyServer, admin: httpx.AsyncClient
) -> None:
    made = await admin.post("/budget/new", json={"budget_id": "free-tier", "max_budget": 0.0000275})
    assert made.status_code == 200, made.text
    for user_id in ("shopper-1", "shopper-2"):
        resp = await admin.post("/end_user/new", json={"user_id": user_id, "budget_id": "free-tier"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["litellm_budget_table"]["max_budget"] == 0.0000275
    client = sdk(proxy, (await new_key(admin))["key"])  # the key itself has no budget

    for _ in range(3):  # 0, 1 and 2 x COST spent are all under 2.5 x COST
        await client.chat.completions.create(model="gpt-fake", messages=HI, user="shopper-1", max_tokens=10)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="gpt-fake", messages=HI, user="shopper-1", max_tokens=10)
    assert refused.value.type == "budget_exceeded"
    assert "ExceededBudget: End User=shopper-1 over budget. Spend=0.000033, Budget=0.0000275" in refused.value.message
    # the budget object is shared, the spend is each end user's own
    await client.chat.completions.create(model="gpt-fake", messages=HI, user="shopper-2", max_tokens=10)

    await flush(proxy)
    assert Decimal(repr((await info(admin, "shopper-1"))["spend"])) == COST * 3
    assert Decimal(repr((await info(admin, "shopper-2"))["spend"])) == COST
    logs = (await admin.get("/spend/logs", params={"limit": 10})).json()
    assert sorted(r["end_user"] for r in logs if r["status"] == "success") == ["shopper-1"] * 3 + ["shopper-2"]


async def test_end_user_from_header_or_metadata_and_unknown_end_users_get_a_row(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    key = (await new_key(shared_admin))["key"]
    client = sdk(shared_proxy, key)
    await client.chat.completions.create(
        model="gpt-fake", messages=HI, extra_headers={"x-litellm-end-user-id": "from-header"}
    )
    await client.chat.completions.create(
        model="gpt-fake", messages=HI, extra_body={"litellm_metadata": {"user": "from-litellm-metadata"}}
    )
    await client.chat.completions.create(
        model="gpt-fake", messages=HI, extra_body={"metadata": {"user_id": "from-meta"}}
    )
    # the header wins over the body's user, as in LiteLLM
    await client.chat.completions.create(
        model="gpt-fake", messages=HI, user="body-user", extra_headers={"x-litellm-customer-id": "from-header"}
    )
    await flush(shared_proxy)
    assert Decimal(repr((await info(shared_admin, "from-header"))["spend"])) == COST * 2
    assert Decimal(repr((await info(shared_admin, "from-litellm-metadata"))["spend"])) == COST
    assert Decimal(repr((await info(shared_admin, "from-meta"))["spend"])) == COST
    missing = await shared_admin.get("/end_user/info", params={"end_user_id": "body-user"})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "end_user_id"


async def test_blocked_end_user_is_refused_whoever_calls(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    blocked = await shared_admin.post("/end_user/block", json={"user_ids": ["bad-actor"]})
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["blocked_users"][0]["user_id"] == "bad-actor"
    assert blocked.json()["blocked_users"][0]["blocked"] is True
    key = (await new_key(shared_admin))["key"]
    for api_key in (key, shared_admin.headers["authorization"].removeprefix("Bearer ")):
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk(shared_proxy, api_key).chat.completions.create(model="gpt-fake", messages=HI, user="bad-actor")
        assert refused.value.message.endswith("User blocked from making LLM API Calls. User=bad-actor")
    unblocked = await shared_admin.post("/customer/unblock", json={"user_ids": ["bad-actor"]})
    assert unblocked.status_code == 200 and unblocked.json()["unblocked_users"][0]["blocked"] is False
    await sdk(shared_proxy, key).chat.completions.create(model="gpt-fake", messages=HI, user="bad-actor")
    # blocking through /end_user/update works as well, and so does unblocking (LiteLLM drops `false`)
    assert (await shared_admin.post("/end_user/update", json={"user_id": "bad-actor", "blocked": True})).json()[
        "blocked"
    ]
    with pytest.raises(openai.BadRequestError):
        await sdk(shared_proxy, key).chat.completions.create(model="gpt-fake", messages=HI, user="bad-actor")
    assert not (await shared_admin.post("/end_user/update", json={"user_id": "bad-actor", "blocked": False})).json()[
        "blocked"
    ]
    await sdk(shared_proxy, key).chat.completions.create(model="gpt-fake", messages=HI, user="bad-actor")


async def test_end_user_rate_limit_from_its_budget(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    resp = await shared_admin.post("/end_user/new", json={"user_id": "chatty", "rpm_limit": 2})
    assert resp.status_code == 200, resp.text
    assert resp.json()["litellm_budget_table"]["rpm_limit"] == 2  # LiteLLM makes a budget of the limits
    client = sdk(shared_proxy, (await new_key(shared_admin))["key"])
    for _ in range(2):
        await client.chat.completions.create(model="gpt-fake", messages=HI, user="chatty")
    with pytest.raises(openai.RateLimitError) as refused:
        await client.chat.completions.create(model="gpt-fake", messages=HI, user="chatty")
    assert "end user 'chatty'" in refused.value.message
    await client.chat.completions.create(model="gpt-fake", messages=HI, user="someone-else")


async def test_budget_period_reset_zeroes_end_user_spend(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    resp = await admin.post(
        "/budget/new",
        json={"budget_id": "daily", "max_budget": 0.00001, "budget_duration": "1d", "budget_reset_at": "2020-01-01"},
    )
    assert resp.status_code == 200, resp.text
    await admin.post("/end_user/new", json={"user_id": "daily-user", "budget_id": "daily", "spend": 5})
    client = sdk(proxy, (await new_key(admin))["key"])
    resets = await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.reset_budgets())
    assert resets >= 1
    assert (await info(admin, "daily-user"))["spend"] == 0
    budget = (await admin.post("/budget/info", json={"budgets": ["daily"]})).json()[0]
    assert budget["budget_reset_at"] > "2026"
    await client.chat.completions.create(model="gpt-fake", messages=HI, user="daily-user")


@pytest.mark.parametrize(
    ("fields", "headers", "param"),
    [
        ({"user": "u" * 256}, {}, "user"),
        ({"user": "a\x00b"}, {}, "user"),
        ({"extra_body": {"litellm_metadata": {"user": 42}}}, {}, "litellm_metadata.user"),
        ({"extra_body": {"metadata": {"user_id": ["x"]}}}, {}, "metadata.user_id"),
        ({}, {"x-litellm-end-user-id": "h" * 300}, "x-litellm-end-user-id"),
    ],
)
async def test_hostile_end_user_ids_are_400(
    shared_proxy: ProxyServer,
    shared_admin: httpx.AsyncClient,
    fields: dict[str, Any],
    headers: dict[str, str],
    param: str,
) -> None:
    key = (await new_key(shared_admin))["key"]
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk(shared_proxy, key).chat.completions.create(
            model="gpt-fake", messages=HI, extra_headers=headers, **fields
        )
    assert refused.value.status_code == 400
    body = refused.value.body
    assert isinstance(body, dict) and body.get("param") == param, body


def test_a_schedule_started_long_ago_resets_without_a_loop_per_missed_period() -> None:
    from datetime import UTC, datetime, timedelta

    from proxyllm.accounts.durations import next_reset

    now = datetime(2026, 11, 30, 12, 0, 0, 250_000, tzinfo=UTC)
    started = time.perf_counter()
    # 846 million missed one-second periods: a loop per period would take minutes (the admin API lets
    # a budget's budget_reset_at be set in the past)
    assert next_reset(now, "1s", datetime(2000, 1, 1, tzinfo=UTC)) == now.replace(microsecond=0) + timedelta(seconds=1)
    assert next_reset(now, "7d", now - timedelta(days=10)) == now + timedelta(days=4)
    assert next_reset(now, "1mo", datetime(2026, 1, 15, tzinfo=UTC)) == datetime(2026, 12, 15, tzinfo=UTC)
    assert time.perf_counter() - started < 0.5
