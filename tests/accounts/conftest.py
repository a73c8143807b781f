from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import new_key, sdk  # noqa: F401  (re-exported for the tests here)


@pytest.fixture
async def proxy(
    database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    """The standard proxy on the parametrized database (SQLite and PostgreSQL).

    ``database_url`` comes first so the proxy stops (and flushes) before its database is dropped.
    """
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env={"DATABASE_URL": database_url})
    return server


@pytest.fixture(scope="module")
async def shared_proxy(
    module_database_url: str, module_proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    """``proxy``, shared by the tests of one module (SQLite and PostgreSQL): for cases that only read, or
    write rows of their own and assert nothing about anyone else's (tests/conftest.py, module_proxy_factory)."""
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory, config, env={"DATABASE_URL": module_database_url}
    )
    return server


HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def postgres_admin(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> AsyncIterator[httpx.AsyncClient]:
    """A master-key client of a proxy on its own PostgreSQL database (for races SQLite cannot have)."""
    from tests.conftest import fresh_postgres_database, postgres_template

    async with fresh_postgres_database(await postgres_template()) as url:
        config = standard_config(openai_upstream.api_base, ollama_upstream.url)
        server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env={"DATABASE_URL": url})
        async with httpx.AsyncClient(
            base_url=server.url, timeout=60, headers={"authorization": f"Bearer {MASTER_KEY}"}
        ) as client:
            yield client
        await asyncio.to_thread(server.stop)
