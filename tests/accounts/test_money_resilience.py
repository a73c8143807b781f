"""The spend path on PostgreSQL when rows are refused, the database stalls, or it is gone at shutdown.

Real PostgreSQL (DATABASE_URL), the real spend writer, the real HTTP server; the database is stalled
with a real lock and cut with a real TCP forwarder between the proxy and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import httpx
import pytest

from tests.conftest import (
    MASTER_KEY,
    ProxyServer,
    fresh_postgres_database,
    postgres_template,
    run_in_proxy,
    standard_config,
)
from tests.fakes.base import free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.tcp_proxy import CuttableProxy

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_postgres_database(await postgres_template()) as url:
        yield url


async def make_key(client: httpx.AsyncClient, **fields: Any) -> str:
    resp = await client.post("/key/generate", json=fields)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["key"])


async def count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_a_refused_row_is_set_aside_and_every_other_row_is_written(
    proxy_factory: Any, pg_url: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, tmp_path: Path
) -> None:
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    proxy: ProxyServer = await asyncio.to_thread(
        proxy_factory, config, env={"DATABASE_URL": pg_url, "PROXYLLM_SPOOL_DIR": str(tmp_path)}
    )
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = await make_key(admin, user_id="poison")
        writer = proxy.runtime.spend
        # Rows PostgreSQL refuses (a NUL byte, a value wider than its column), queued among good ones.
        bad = {
            "request_id": "poison-1",
            "call_type": "chat",
            "model_group": "gpt-fake",
            "end_user": "x\x00y",
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "total_tokens": 2,
            "spend": Decimal(0),
            "start_time": datetime.now(UTC),
            "end_time": datetime.now(UTC),
            "status": "success",
            "cache_hit": False,
            "stream": False,
        }
        writer.add_row(bad)
        writer.add_row({**bad, "request_id": "poison-2", "end_user": None, "model_group": "g" * 300})
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
            for _ in range(10):
                resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                assert resp.status_code == 200, resp.text
        assert await asyncio.to_thread(run_in_proxy, proxy, writer.flush())
        ready = (await admin.get("/health/readiness")).json()
        metrics = (await admin.get("/metrics")).text
    assert await count(pg_url, "SELECT count(*) FROM spend_logs") == 10
    assert await count(pg_url, "SELECT count(*) FROM dead_letters") == 2
    assert await count(pg_url, "SELECT count(*) FROM users WHERE user_id = 'poison' AND spend > 0") == 1
    reason = await count(pg_url, "SELECT count(*) FROM dead_letters WHERE reason <> '' AND payload LIKE '%poison-1%'")
    assert reason == 1
    assert ready["database"]["dead_letters"] == 2 and ready["database"]["status"] == "ok", ready
    assert 'proxyllm_dead_letters_total{kind="spend_log"} 2.0' in metrics


async def test_a_locked_spend_table_does_not_stall_known_keys(
    proxy_factory: Any, pg_url: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, tmp_path: Path
) -> None:
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    env = {"DATABASE_URL": pg_url, "PROXYLLM_SPOOL_DIR": str(tmp_path), "PROXYLLM_DB_LOCK_TIMEOUT_MS": "1000"}
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config, env=env)
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = await make_key(admin, user_id="locked", max_budget=10)
    proxy.runtime.keys.ttl = 1.0  # the key's entry goes stale during the stall: it must not wait for it
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=proxy.url, headers=auth, timeout=30) as client:
        first = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
        assert first.status_code == 200
        locker = await asyncpg.connect(pg_url)
        try:
            await locker.execute("BEGIN")
            await locker.execute("LOCK TABLE spend_logs, keys, users IN ACCESS EXCLUSIVE MODE")
            latencies = []
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                started = time.monotonic()
                resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                latencies.append(time.monotonic() - started)
                assert resp.status_code == 200, resp.text
                await asyncio.sleep(0.1)
        finally:
            await locker.execute("ROLLBACK")
            await locker.close()
    assert len(latencies) >= 10 and max(latencies) < 1.5, latencies
    assert await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    assert await count(pg_url, "SELECT count(*) FROM spend_logs") == len(latencies) + 1


# -- shutdown with the database gone: journal, restart, replay --------------------------------------


def _serve(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "proxyllm.cli", "--config", str(config), "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError(f"proxy exited: {process.stderr.read().decode() if process.stderr else ''}")
            try:
                if (await client.get(url + "/health/liveliness")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("proxy did not start")


@pytest.mark.slow
async def test_sigterm_with_the_database_cut_loses_no_row(
    pg_url: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, tmp_path: Path
) -> None:
    target = urlparse(pg_url)
    forwarder = CuttableProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await forwarder.start()
    via_forwarder = pg_url.replace(f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{forwarder.port}")
    config = tmp_path / "config.yaml"
    config.write_text(standard_config(openai_upstream.api_base, ollama_upstream.url))
    env = {
        "DATABASE_URL": via_forwarder,
        "PROXYLLM_SPOOL_DIR": str(tmp_path / "spool"),
        "PROXYLLM_SHUTDOWN_FLUSH_SECONDS": "2",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(config, port, env)
    try:
        await _wait_up(url, process)
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
            key = await make_key(admin, user_id="journaled", max_budget=5)
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
            await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})  # caches the key
            await asyncio.sleep(1.5)  # the first row is written
            forwarder.cut()
            for _ in range(24):
                resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
                assert resp.status_code == 200, resp.text
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        if process.poll() is None:
            process.kill()
    journal = list((tmp_path / "spool").glob("queued-*.jsonl"))
    assert journal and journal[0].stat().st_size > 0
    assert await count(pg_url, "SELECT count(*) FROM spend_logs") == 1

    forwarder.restore()
    process = _serve(config, port, env)
    try:
        await _wait_up(url, process)
        for _ in range(100):
            if await count(pg_url, "SELECT count(*) FROM spend_logs") == 25:
                break
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
    finally:
        if process.poll() is None:
            process.kill()
        await forwarder.stop()
    assert await count(pg_url, "SELECT count(*) FROM spend_logs") == 25
    spend = await count(pg_url, "SELECT spend FROM users WHERE user_id = 'journaled'")
    assert spend == 25 * 11_000  # nano-dollars: 25 requests at 0.000011
    assert not list((tmp_path / "spool").glob("queued-*"))  # replayed, then removed


async def test_user_level_models_are_enforced(
    proxy_factory: Any, pg_url: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config, env={"DATABASE_URL": pg_url})
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        resp = await admin.post("/user/new", json={"user_id": "narrow", "models": ["llama3"]})
        assert resp.status_code == 200, resp.text
        key = await make_key(admin, user_id="narrow", models=["llama3", "gpt-fake"])
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        refused = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
        allowed = await client.post("/v1/chat/completions", json={"model": "llama3", "messages": HI})
    assert refused.status_code == 401, refused.text  # LiteLLM's status and type for a model not allowed
    error = refused.json()["error"]
    assert error["type"] == "user_model_access_denied" and error["param"] == "model", error
    assert "can only access models=['llama3']" in error["message"]  # the intersection, not the key's list
    assert allowed.status_code == 200, allowed.text


async def test_a_model_rate_limit_on_an_alias_holds_for_the_target_name(
    proxy_factory: Any, pg_url: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    extra = "  model_group_alias: {fast: gpt-fake}\n"
    config = standard_config(openai_upstream.api_base, ollama_upstream.url, "").replace(
        "router_settings:\n", "router_settings:\n" + extra
    )
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config, env={"DATABASE_URL": pg_url})
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = await make_key(admin, user_id="aliased", metadata={"model_rpm_limit": {"fast": 2}})
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        statuses = [
            (await client.post("/v1/chat/completions", json={"model": name, "messages": HI})).status_code
            for name in ("fast", "gpt-fake", "gpt-fake", "fast")
        ]
    assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429], statuses


async def test_prepaid_requests_fail_closed_quickly_when_the_balance_cannot_be_read(
    proxy_factory: Any, pg_url: str, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    from tests.billing.conftest import BILLING_ENV

    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    env = {**BILLING_ENV, "DATABASE_URL": pg_url, "PROXYLLM_DB_LOCK_TIMEOUT_MS": "20000"}
    env.pop("PROXYLLM_PREPAID_TIMEOUT_SECONDS")  # the product's default bound, 2 s, is what is checked here
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config, env=env)
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        key = await make_key(admin, user_id="stalled")
        resp = await admin.post("/stripe/balance/adjust", json={"account_id": "stalled", "amount": "1", "reason": "t"})
        assert resp.status_code == 200, resp.text
    auth = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=proxy.url, headers=auth, timeout=30) as client:
        assert (
            await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
        ).status_code == 200
        locker = await asyncpg.connect(pg_url)
        try:
            await locker.execute("BEGIN")
            await locker.execute("LOCK TABLE billing_accounts IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
            waited = time.monotonic() - started
        finally:
            await locker.execute("ROLLBACK")
            await locker.close()
        after = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "database_unavailable", resp.text
    assert waited < 4, waited
    assert after.status_code == 200, after.text
