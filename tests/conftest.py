from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import ModuleType
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
from tests.helpers import MASTER_KEY, key_client


@pytest.fixture(autouse=True)
async def _close_sdk_clients(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Close every OpenAI/Anthropic SDK client a test made: ones left to the garbage collector were seen
    to hang later tests' requests on a loaded machine."""
    made: list[Any] = []
    # Only SDKs a test module already imported (importing both for every test costs seconds per run).
    classes = [
        getattr(sys.modules[name], cls)
        for name, cls in (("openai", "AsyncOpenAI"), ("anthropic", "AsyncAnthropic"))
        if name in sys.modules
    ]
    for cls in classes:
        original = cls.__init__

        def tracking(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            made.append(self)

        monkeypatch.setattr(cls, "__init__", tracking)
    yield
    for client in made:
        await client.close()


@pytest.fixture
def clock() -> Iterator[ModuleType]:
    """The proxy's clock (proxyllm/core/clock.py): ``clock.advance(seconds)`` instead of sleeping. The
    in-process proxies read it too; it is set back when the test ends."""
    from proxyllm.core import clock

    yield clock
    clock.reset()


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


class _TestServer(uvicorn.Server):
    """uvicorn's server with its two fixed 0.1 s pauses on the way out made event-driven: the main loop
    wakes as soon as ``stop`` asks, and shutdown polls the closing connections every 5 ms instead of
    sleeping 0.1 s first. Stopping a test proxy took 0.2 s of idle wall time, hundreds of times a run."""

    wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self.wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 0.1)

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 30
        while (self.server_state.connections or self.server_state.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


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
        wake, loop = getattr(self.server, "wake", None), self.runtime.loop
        if wake is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(wake.set)
        self.thread.join(timeout=30)


_sqlite_template: list[str] = []


def sqlite_copy() -> str:
    """A fresh SQLite database file for one proxy: a copy of one migrated once per test process (migrating
    each from scratch costs a quarter of a second; the proxy still runs its migrations, finding none due)."""
    if not _sqlite_template:
        from proxyllm.db import Database

        path = f"{tempfile.mkdtemp(prefix='proxyllm-template-')}/proxyllm.db"

        async def migrate() -> None:
            db = Database(f"sqlite+aiosqlite:///{path}")
            await db.migrate()
            await db.close()

        worker = threading.Thread(target=lambda: asyncio.run(migrate()))  # whatever loop the caller runs in
        worker.start()
        worker.join()
        _sqlite_template.append(path)
    copy = f"{tempfile.mkdtemp(prefix='proxyllm-test-')}/proxyllm.db"
    shutil.copyfile(_sqlite_template[0], copy)
    return copy


def start_proxy(config_text: str, *, env: dict[str, str] | None = None, **runtime_kwargs: Any) -> ProxyServer:
    env = dict(env or {})
    if "DATABASE_URL" not in env:  # every proxy gets its own SQLite file unless a test picks a database
        env["DATABASE_URL"] = f"sqlite:///{sqlite_copy()}"
    elif env["DATABASE_URL"].startswith("postgres"):
        # Several test workers share one PostgreSQL (max_connections 100): small pools per proxy.
        env.setdefault("PROXYLLM_DB_POOL_SIZE", "4")
        env.setdefault("PROXYLLM_DB_HOT_POOL_SIZE", "8")
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
        proxy_headers=False,  # as the CLI runs it: only general_settings.trusted_proxies may vouch for X-Forwarded-For
    )
    server = _TestServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("proxy did not start")
        time.sleep(0.01)
    return ProxyServer(runtime, server, thread, port)


async def _proxies() -> AsyncIterator[Any]:
    started: list[ProxyServer] = []

    def make(config_text: str, **kwargs: Any) -> ProxyServer:
        proxy = start_proxy(config_text, **kwargs)
        started.append(proxy)
        return proxy

    yield make
    await asyncio.gather(*(asyncio.to_thread(proxy.stop) for proxy in started))


@pytest.fixture
async def proxy_factory() -> AsyncIterator[Any]:
    """Starts proxies (call it via asyncio.to_thread); stops them without blocking the test's event loop,
    where the fake upstreams live."""
    async for make in _proxies():
        yield make


@pytest.fixture(scope="module")
async def module_proxy_factory() -> AsyncIterator[Any]:
    """``proxy_factory`` for proxies one test module shares: its read-only cases (validation, shapes,
    errors) need no proxy of their own, and starting one per case was most of the suite's time. A test
    on a shared proxy makes its own rows (unique ids) and never asserts on what other tests leave."""
    async for make in _proxies():
        yield make


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
  proxy_batch_write_at: 0.2  # spend logs and counters written soon: tests that read them wait less
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
    """A master-key client of ``proxy`` (whichever ``proxy`` the test's folder defines)."""
    async with key_client(proxy) as client:
        yield client


@pytest.fixture
async def admin(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """``http`` by the name the admin-API tests use."""
    return http


@pytest.fixture
async def admin_for() -> AsyncIterator[Any]:
    """``admin_for(proxy)``: a master-key client of that proxy, closed when the test ends."""
    clients: list[httpx.AsyncClient] = []

    def make(proxy: ProxyServer) -> httpx.AsyncClient:
        client = key_client(proxy)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(scope="module")
async def shared_proxy(
    module_proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    """The standard proxy (own SQLite file), shared by the tests of one module (see module_proxy_factory)."""
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory, standard_config(openai_upstream.api_base, ollama_upstream.url)
    )
    return server


@pytest.fixture(scope="module")
async def shared_admin(shared_proxy: ProxyServer) -> AsyncIterator[httpx.AsyncClient]:
    """A master-key client of ``shared_proxy`` (whichever ``shared_proxy`` the test's folder defines)."""
    async with key_client(shared_proxy) as client:
        yield client


# -- databases ---------------------------------------------------------------------------------

REQUIRE_SERVICES = os.environ.get("PROXYLLM_REQUIRE_SERVICES") == "1"


def service_missing(what: str) -> None:
    """Skip locally; in CI (PROXYLLM_REQUIRE_SERVICES=1) a missing service is a failure."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (PROXYLLM_REQUIRE_SERVICES=1) but is not available")
    pytest.skip(f"{what} not configured")


def _postgres_dsn() -> str:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql")):
        service_missing("PostgreSQL (DATABASE_URL)")
    return base.replace("postgresql+asyncpg://", "postgresql://")


async def _admin_execute(dsn: str, *statements: str) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at DATABASE_URL is unreachable: {exc}")
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


_template: dict[str, str] = {}


async def postgres_template() -> str:
    """A migrated database that per-test databases are copied from (much faster than migrating each)."""
    if "name" not in _template:
        from proxyllm.db import Database
        from proxyllm.db.url import to_async_url

        dsn = _postgres_dsn()
        name = f"proxyllm_tmpl_{uuid.uuid4().hex[:12]}"
        await _admin_execute(dsn, f'CREATE DATABASE "{name}"')
        _template["name"] = name
        db = Database(to_async_url(f"{dsn.rpartition('/')[0]}/{name}"))
        await db.migrate()
        await db.close()
    return _template["name"]


@pytest.fixture(scope="session", autouse=True)
async def _drop_postgres_template() -> AsyncIterator[None]:
    yield
    if "name" in _template:
        await _admin_execute(_postgres_dsn(), f'DROP DATABASE IF EXISTS "{_template.pop("name")}" WITH (FORCE)')


@asynccontextmanager
async def fresh_postgres_database(template: str | None = None) -> AsyncIterator[str]:
    """A new PostgreSQL database on DATABASE_URL's server (a copy of ``template``), dropped afterwards."""
    dsn = _postgres_dsn()
    name = f"proxyllm_t_{uuid.uuid4().hex[:12]}"
    await _admin_execute(dsn, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield f"{dsn.rpartition('/')[0]}/{name}"
    finally:
        await _admin_execute(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """Each test of persistence runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/proxyllm.db"
        return
    async with fresh_postgres_database(await postgres_template()) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def module_database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """``database_url`` for a proxy one module shares (module_proxy_factory): SQLite and PostgreSQL. Ask for
    it before ``module_proxy_factory`` so the proxy stops before its database is dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{sqlite_copy()}"
        return
    async with fresh_postgres_database(await postgres_template()) as url:
        yield url


def redis_url_or_skip() -> str:
    """REDIS_URL (or the local default) when it answers; else skip, or fail when services are required."""
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        service_missing(f"Redis at {url} ({type(exc).__name__}; set REDIS_URL)")
    return url


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


def run_in_proxy(proxy: ProxyServer, coro: Any) -> Any:
    """Run a coroutine on the proxy's own event loop (from a test thread) and return its result."""
    assert proxy.runtime.loop is not None
    return asyncio.run_coroutine_threadsafe(coro, proxy.runtime.loop).result(timeout=30)
