from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from proxyllm.config.loader import parse_config
from proxyllm.server.app import create_app
from proxyllm.server.runtime import Runtime
from tests.fakes.base import free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

MASTER_KEY = "sk-master-test-key"


@pytest.fixture(scope="session")
async def openai_upstream() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="session")
async def ollama_upstream() -> AsyncIterator[FakeOllama]:
    fake = FakeOllama()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("openai_upstream", "ollama_upstream"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@dataclass
class ProxyServer:
    """A proxy running in its own thread and event loop, serving real HTTP on 127.0.0.1."""

    runtime: Runtime
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_proxy(config_text: str, *, env: dict[str, str] | None = None, **runtime_kwargs: Any) -> ProxyServer:
    env = dict(env or {})
    if "DATABASE_URL" not in env:  # every proxy gets its own SQLite file unless a test picks a database
        env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='proxyllm-test-')}/proxyllm.db"
    runtime = Runtime(parse_config(config_text), env=env, **runtime_kwargs)
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime),
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http="httptools",
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("proxy did not start")
        time.sleep(0.01)
    return ProxyServer(runtime, server, thread, port)


@pytest.fixture
def proxy_factory() -> Iterator[Any]:
    started: list[ProxyServer] = []

    def make(config_text: str, **kwargs: Any) -> ProxyServer:
        proxy = start_proxy(config_text, **kwargs)
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


def standard_config(openai_base: str, ollama_base: str, extra: str = "") -> str:
    return f"""
model_list:
  - model_name: gpt-fake
    litellm_params:
      model: openai/gpt-fake
      api_base: {openai_base}
      api_key: sk-upstream-secret
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: embed-fake
    litellm_params:
      model: openai/embed-fake
      api_base: {openai_base}
  - model_name: llama3
    litellm_params:
      model: ollama_chat/llama3
      api_base: {ollama_base}
      input_cost_per_token: 0.0000005
      output_cost_per_token: 0.0000005
  - model_name: llama3-generate
    litellm_params:
      model: ollama/llama3
      api_base: {ollama_base}
  - model_name: nomic
    litellm_params:
      model: ollama/nomic-embed-text
      api_base: {ollama_base}
general_settings:
  master_key: {MASTER_KEY}
router_settings:
  num_retries: 2
{extra}
"""


@pytest.fixture
async def proxy(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    server: ProxyServer = await asyncio.to_thread(
        proxy_factory, standard_config(openai_upstream.api_base, ollama_upstream.url)
    )
    return server


@pytest.fixture
async def http(proxy: ProxyServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"}
    ) as client:
        yield client


# -- databases ---------------------------------------------------------------------------------

REQUIRE_SERVICES = os.environ.get("PROXYLLM_REQUIRE_SERVICES") == "1"


def service_missing(what: str) -> None:
    """Skip locally; in CI (PROXYLLM_REQUIRE_SERVICES=1) a missing service is a failure."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (PROXYLLM_REQUIRE_SERVICES=1) but is not available")
    pytest.skip(f"{what} not configured")


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on DATABASE_URL's server, dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql")):
        service_missing("PostgreSQL (DATABASE_URL)")
    import asyncpg

    dsn = base.replace("postgresql+asyncpg://", "postgresql://")
    name = f"proxyllm_t_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at DATABASE_URL is unreachable: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    head, _, _ = dsn.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        admin = await asyncpg.connect(dsn, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """Each test of persistence runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/proxyllm.db"
        return
    async with fresh_postgres_database() as url:
        yield url


def run_in_proxy(proxy: ProxyServer, coro: Any) -> Any:
    """Run a coroutine on the proxy's own event loop (from a test thread) and return its result."""
    assert proxy.runtime.loop is not None
    return asyncio.run_coroutine_threadsafe(coro, proxy.runtime.loop).result(timeout=30)
