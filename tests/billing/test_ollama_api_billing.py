"""Ollama's API is billed like every endpoint: a prepaid, budgeted key pays for /api/chat and
/api/embed calls (bytes-through to Ollama and translated from OpenAI), with a spend-log row each.

Runs on SQLite and on PostgreSQL (the ``database_url`` fixture). llama3 costs 5e-7 per token
(the fake Ollama reports 7 prompt and 5 completion tokens); gpt-fake 1e-6 / 2e-6.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import ollama
import pytest

from tests.billing.conftest import fund, ledger_invariant, settled
from tests.conftest import ProxyServer, run_in_proxy

HI = [{"role": "user", "content": "hi"}]


async def spend_rows(admin: httpx.AsyncClient, proxy: ProxyServer, key: str) -> list[dict[str, Any]]:
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    resp = await admin.get("/spend/logs", params={"api_key": key})
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


async def test_prepaid_key_pays_for_the_ollama_api(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    resp = await admin.post("/key/generate", json={"user_id": "olla", "max_budget": 1.0})
    assert resp.status_code == 200, resp.text
    key = resp.json()["key"]
    await fund(admin, "olla", "1.00")
    client = ollama.AsyncClient(host=proxy.url, headers={"authorization": f"Bearer {key}"})

    plain = await client.chat(model="llama3", messages=HI, stream=False)  # an Ollama upstream: bytes-through
    assert plain.eval_count == 5 and plain.prompt_eval_count == 7
    parts = [p async for p in await client.chat(model="llama3", messages=HI, stream=True)]
    assert parts[-1].done and parts[-1].eval_count == 5
    translated = await client.chat(model="gpt-fake", messages=HI, stream=False)  # an OpenAI upstream
    assert translated.message.content

    rows = await spend_rows(admin, proxy, key)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"success"}
    llama = [r for r in rows if r["model_group"] == "llama3"]
    assert [Decimal(repr(r["spend"])) for r in llama] == [Decimal("0.0000005") * 12] * 2
    assert {r["stream"] for r in llama} == {True, False}
    gpt = next(r for r in rows if r["model_group"] == "gpt-fake")
    assert gpt["spend"] > 0 and gpt["prompt_tokens"] > 0
    total = sum(Decimal(repr(r["spend"])) for r in rows)

    info = await settled(admin, "olla", proxy)
    assert Decimal(str(info["balance"])) == Decimal("1.00") - total
    await ledger_invariant(proxy)
    key_info = (await admin.get("/key/info", params={"key": key})).json()
    assert Decimal(repr(key_info["info"]["spend"])) == total


async def test_an_empty_balance_is_refused_in_ollamas_shape(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    resp = await admin.post("/key/generate", json={"user_id": "broke"})
    key = resp.json()["key"]
    client = ollama.AsyncClient(host=proxy.url, headers={"authorization": f"Bearer {key}"})
    with pytest.raises(ollama.ResponseError) as info:
        await client.chat(model="llama3", messages=HI, stream=False)
    assert info.value.status_code == 402 and info.value.error
    rows = await spend_rows(admin, proxy, key)
    assert [r["status"] for r in rows] == ["error"] and rows[0]["spend"] == 0
