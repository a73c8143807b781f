"""Spend: a row per request, the cost header, filters, and the report.

The log cases filter by their own key, user and team and share one proxy per module (``shared_proxy``);
the report, which groups everyone's spend, has a proxy of its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.accounts.conftest import HI, new_key
from tests.conftest import ProxyServer, run_in_proxy
from tests.fakes.openai_upstream import FakeOpenAI


async def logs(admin: httpx.AsyncClient, proxy: ProxyServer, **params: Any) -> list[dict[str, Any]]:
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    resp = await admin.get("/spend/logs", params=params)
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


async def test_every_request_is_logged_with_its_cost(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, openai_upstream: FakeOpenAI
) -> None:
    await shared_admin.post("/team/new", json={"team_id": "spenders"})
    key = await new_key(shared_admin, key_alias="spender", user_id="sam", team_id="spenders")
    auth = {"authorization": f"Bearer {key['key']}"}
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers=auth, timeout=30) as client:
        plain = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI, "user": "end-1"})
        assert plain.headers["x-litellm-response-cost"] == "0.000011"
        request_id = plain.headers["x-litellm-call-id"]
        async with client.stream(
            "POST", "/v1/chat/completions", json={"model": "llama3", "messages": HI, "stream": True}
        ) as streamed:
            body = b"".join([chunk async for chunk in streamed.aiter_bytes()])
        assert body.endswith(b"data: [DONE]\n\n")
        openai_upstream.fail(500, "boom", times=3)
        failed = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
        assert failed.status_code == 500

    rows = await logs(shared_admin, shared_proxy, api_key=key["key"])
    assert len(rows) == 3
    by_status = {r["status"]: r for r in rows if r["model_group"] == "gpt-fake"}
    ok = next(r for r in rows if r["request_id"] == request_id)
    assert ok["spend"] == 0.000011 and ok["prompt_tokens"] == 1 and ok["completion_tokens"] == 5
    assert ok["user"] == "sam" and ok["team_id"] == "spenders" and ok["end_user"] == "end-1"
    assert ok["key_alias"] == "spender" and ok["model"] == "openai/gpt-fake" and ok["api_key"] == key["token"]
    assert by_status["error"]["error_class"] == "upstream" and by_status["error"]["spend"] == 0
    stream_row = next(r for r in rows if r["model_group"] == "llama3")
    assert stream_row["stream"] and stream_row["ttft_ms"] is not None
    assert Decimal(repr(stream_row["spend"])) == Decimal("0.0000005") * (7 + 5)

    assert [r["request_id"] for r in await logs(shared_admin, shared_proxy, request_id=request_id)] == [request_id]
    assert len(await logs(shared_admin, shared_proxy, user_id="sam")) == 3
    assert len(await logs(shared_admin, shared_proxy, team_id="spenders")) == 3
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert await logs(shared_admin, shared_proxy, api_key=key["token"], start_date=tomorrow) == []
    today = datetime.now(UTC).date().isoformat()
    assert len(await logs(shared_admin, shared_proxy, api_key=key["token"], start_date=today, end_date=today)) == 3


async def test_virtual_key_sees_only_its_own_spend(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    mine, other = await new_key(shared_admin), await new_key(shared_admin)
    for key in (mine, other):
        async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {key['key']}"}) as c:
            await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
    await asyncio.to_thread(run_in_proxy, shared_proxy, shared_proxy.runtime.spend.flush())
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {mine['key']}"}) as c:
        own = (await c.get("/spend/logs")).json()
        assert {r["api_key"] for r in own} == {mine["token"]}
        assert (await c.get("/spend/logs", params={"api_key": other["token"]})).status_code == 403
        assert (await c.get("/global/spend/report")).status_code == 403


async def test_spend_report_groups_by_day_and_key(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    a, b = await new_key(admin), await new_key(admin)
    for key, n in ((a, 2), (b, 1)):
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key['key']}"}) as c:
            for _ in range(n):
                await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    report = (await admin.get("/global/spend/report", params={"group_by": "key"})).json()
    assert len(report) == 1 and report[0]["group_by_day"] == datetime.now(UTC).date().isoformat()
    per_key = {entry["key"]: entry for entry in report[0]["keys"]}
    assert per_key[a["token"]]["requests"] == 2 and per_key[a["token"]]["total_spend"] == 0.000022
    assert per_key[b["token"]]["total_tokens"] == 6
    models = (await admin.get("/global/spend/report", params={"group_by": "model"})).json()
    assert models[0]["models"][0]["model"] == "gpt-fake"
    assert (await admin.get("/global/spend/report", params={"group_by": "nope"})).status_code == 400
