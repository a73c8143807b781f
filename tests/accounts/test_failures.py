"""What happens when things go wrong: SIGTERM under load, the database going away, racing migrations."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from proxyllm.db import Database
from proxyllm.db.tables import SpendLog
from proxyllm.db.url import to_async_url
from tests.accounts.conftest import HI, new_key, sdk
from tests.conftest import MASTER_KEY, ProxyServer, fresh_postgres_database, standard_config
from tests.fakes.base import Action, free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.tcp_forwarder import TcpForwarder

ROOT = Path(__file__).resolve().parents[2]


async def count_rows(url: str) -> int:
    db = Database(to_async_url(url))
    try:
        async with db.session() as session:
            return int((await session.execute(select(func.count()).select_from(SpendLog))).scalar_one())
    finally:
        await db.close()


def spawn_proxy(config_path: Path, port: int, database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "proxyllm", "--config", str(config_path), "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"proxy exited: {proc.stdout.read().decode() if proc.stdout else ''}")
            try:
                if (await client.get(url + "/health/readiness")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("proxy did not become ready")


@pytest.mark.slow
async def test_sigterm_under_load_loses_no_spend(
    database_url: str, tmp_path: Path, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(standard_config(openai_upstream.api_base, ollama_upstream.url))
    port = free_port()
    proc = spawn_proxy(config, port, database_url)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc)
        openai_upstream.push(*[Action(delay=2) for _ in range(40)])
        answered = 0

        async def one(client: httpx.AsyncClient) -> None:
            nonlocal answered
            try:
                resp = await client.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
            except httpx.TransportError:
                return
            assert resp.status_code == 200, resp.text
            answered += 1

        async with httpx.AsyncClient(
            base_url=url, timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"}
        ) as client:
            tasks = [asyncio.create_task(one(client)) for _ in range(40)]
            for _ in range(200):  # every request is in flight at the upstream now
                if len(openai_upstream.requests) == 40:
                    break
                await asyncio.sleep(0.05)
            assert len(openai_upstream.requests) == 40
            proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*tasks)
        # uvicorn re-raises the signal once its graceful shutdown is done: exit by SIGTERM is the clean path
        assert await asyncio.to_thread(proc.wait, 40) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert answered == 40
    assert await count_rows(database_url) == answered


async def test_database_outage(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> None:
    async with fresh_postgres_database() as url:
        host_port = url.split("@", 1)[1].split("/", 1)[0]
        forwarder = TcpForwarder(host_port.split(":")[0], int(host_port.split(":")[1]))
        await forwarder.start()
        via = url.replace(host_port, f"127.0.0.1:{forwarder.port}")
        proxy: ProxyServer = await asyncio.to_thread(
            proxy_factory, standard_config(openai_upstream.api_base, ollama_upstream.url), env={"DATABASE_URL": via}
        )
        proxy.runtime.keys.ttl = 0.5
        async with httpx.AsyncClient(
            base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"}
        ) as admin:
            key = await new_key(admin)
            client = sdk(proxy, key["key"])
            await client.chat.completions.create(model="gpt-fake", messages=HI)

            await forwarder.cut()
            await asyncio.sleep(0.7)  # the cached key entry is now past its TTL
            for _ in range(3):
                await client.chat.completions.create(model="gpt-fake", messages=HI)
            assert (await admin.get("/health/liveliness")).status_code == 200
            ready = await admin.get("/health/readiness")
            assert ready.status_code == 503 and ready.json()["database"]["status"] == "error"
            listing = await admin.get("/key/list")
            assert listing.status_code == 503 and "database is unavailable" in listing.json()["error"]["message"]

            await forwarder.start()
            deadline = time.monotonic() + 20
            while await count_rows(url) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
            assert await count_rows(url) == 4
            assert (await admin.get("/health/readiness")).status_code == 200
        await asyncio.to_thread(proxy.stop)
        await forwarder.cut()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_replicas_migrating_at_once(backend: str, tmp_path: Path) -> None:
    async def race(url: str) -> None:
        env = {**os.environ, "DATABASE_URL": url}
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "proxyllm",
                "migrate",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        outputs = [await p.communicate() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        db = Database(to_async_url(url))
        async with db.session() as session:
            versions = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        await db.close()
        from alembic.script import ScriptDirectory

        from proxyllm.db.migrate import alembic_config

        assert sorted(versions) == sorted(ScriptDirectory.from_config(alembic_config()).get_heads())
        assert await count_rows(url) == 0

    if backend == "sqlite":
        await race(f"sqlite:///{tmp_path}/race.db")
    else:
        async with fresh_postgres_database() as url:
            await race(url)
