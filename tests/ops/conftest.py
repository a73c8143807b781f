"""Operator-control tests: proxies with models in the database, admin clients, Redis when present."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy, service_missing
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import eventually, key_client  # noqa: F401  (re-exported for the tests here)

SALT_KEY = "salt-for-tests-0123456789abcdef"
UPSTREAM_SECRET = "sk-upstream-db-secret-7f3a9c"  # what a stored model's api_key is: must never show in clear
HI = [{"role": "user", "content": "hi"}]


def ops_config(openai_upstream: FakeOpenAI, *, general: dict[str, Any] | None = None) -> str:
    """One config-file model (gpt-fake) and models stored in the database."""
    return yaml.safe_dump(
        {
            "model_list": [
                {
                    "model_name": "gpt-fake",
                    "litellm_params": {
                        "model": "openai/gpt-fake",
                        "api_base": openai_upstream.api_base,
                        "api_key": "sk-config-file-secret",
                    },
                    "model_info": {"id": "config-gpt"},
                }
            ],
            "router_settings": {"num_retries": 0},
            "general_settings": {"master_key": MASTER_KEY, "store_model_in_db": True, **(general or {})},
        }
    )


def new_model_body(openai_upstream: FakeOpenAI, name: str = "db-model", **info: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": "openai/gpt-fake-big",
            "api_base": openai_upstream.api_base,
            "api_key": UPSTREAM_SECRET,
            "input_cost_per_token": "0.000002",
        },
        "model_info": {"mode": "chat", **info},
    }


async def start(proxy_factory: Any, text: str, database_url: str, **env: str) -> ProxyServer:
    full_env = {"DATABASE_URL": database_url, "LITELLM_SALT_KEY": SALT_KEY, **env}
    server: ProxyServer = await asyncio.to_thread(proxy_factory, text, env=full_env)
    return server


admin = key_client  # a client of the proxy with the master key (or the key given)


async def chat(proxy: ProxyServer, model: str, key: str = MASTER_KEY) -> httpx.Response:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
        return await client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": HI},
            headers={"authorization": f"Bearer {key}"},
        )


def serves(proxy: ProxyServer, model: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return proxy.runtime.router.find(model) is not None

    return check


def not_serves(proxy: ProxyServer, model: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return proxy.runtime.router.find(model) is None

    return check


async def db_rows(proxy: ProxyServer, table: Any) -> list[dict[str, Any]]:
    """Rows of a table read straight from the proxy's database (no ORM decoding of secrets)."""
    from sqlalchemy import select

    async def read() -> list[dict[str, Any]]:
        async with proxy.runtime.db.session() as session:
            return [dict(row._mapping) for row in (await session.execute(select(table))).all()]

    result: list[dict[str, Any]] = await asyncio.to_thread(run_in_proxy, proxy, read())
    return result


@pytest.fixture
def redis_url() -> str:
    """REDIS_URL or the local default when it answers; else skip, or fail under PROXYLLM_REQUIRE_SERVICES=1."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        service_missing(f"Redis at {url} ({type(exc).__name__})")
    return url


@pytest.fixture
def namespace() -> str:
    return f"proxyllm-ops-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def ops_proxy(database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI) -> AsyncIterator[ProxyServer]:
    yield await start(proxy_factory, ops_config(openai_upstream), database_url)
