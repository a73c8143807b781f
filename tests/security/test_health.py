"""Item 3: the probing /health is for admins, its probes are rate limited, and one odd deployment never
makes it answer 500."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.openai_upstream import FakeOpenAI

URL_PASSWORD = "health-url-password-41c7"


def config(openai_upstream: FakeOpenAI, **general: Any) -> str:
    scheme, _, rest = openai_upstream.api_base.partition("://")
    return yaml.safe_dump(
        {
            "model_list": [
                {
                    "model_name": "plain",
                    "litellm_params": {"model": "openai/gpt-fake", "api_base": openai_upstream.api_base},
                },
                {
                    "model_name": "both",  # an api_key AND credentials in the URL
                    "litellm_params": {
                        "model": "openai/gpt-fake",
                        "api_base": f"{scheme}://ann:{URL_PASSWORD}@{rest}",
                        "api_key": "sk-upstream-both-secret",
                    },
                },
            ],
            "general_settings": {"master_key": MASTER_KEY, **general},
        }
    )


@pytest.fixture
async def proxy(database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    server: ProxyServer = await asyncio.to_thread(
        proxy_factory, config(openai_upstream), env={"DATABASE_URL": database_url}
    )
    return server


@pytest.fixture(scope="module")
async def shared(module_database_url: str, module_proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    """``proxy`` for the cases that count nothing (SQLite and PostgreSQL). The probe-rate case keeps its
    own: on a shared proxy an earlier /health call may already have probed, and it would count nothing."""
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory, config(openai_upstream), env={"DATABASE_URL": module_database_url}
    )
    return server


def as_key(proxy: ProxyServer, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {key}"})


async def test_customers_get_liveliness_and_readiness_but_not_the_probe(shared: ProxyServer) -> None:
    async with as_key(shared, MASTER_KEY) as admin:
        created = await admin.post("/key/generate", json={"key_alias": "customer"})
        assert created.status_code == 200, created.text
    async with as_key(shared, created.json()["key"]) as customer:
        refused = await customer.get("/health")
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "permission_error"
        assert "127.0.0.1" not in refused.text
        assert (await customer.get("/health/liveliness")).status_code == 200
        assert (await customer.get("/health/readiness")).status_code == 200
    async with httpx.AsyncClient(base_url=shared.url) as anonymous:
        assert (await anonymous.get("/health")).status_code == 401
        assert (await anonymous.get("/health/liveliness")).status_code == 200


async def test_api_key_and_url_credentials_do_not_break_health(shared: ProxyServer) -> None:
    async with as_key(shared, MASTER_KEY) as admin:
        resp = await admin.get("/health")
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["healthy_count"] + report["unhealthy_count"] == 2
    assert URL_PASSWORD not in resp.text and "sk-upstream-both-secret" not in resp.text
    (both,) = [e for e in report["healthy_endpoints"] + report["unhealthy_endpoints"] if e["model_name"] == "both"]
    assert both["api_base"].startswith("http://****@127.0.0.1")


async def test_probes_are_rate_limited(proxy: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    async with as_key(proxy, MASTER_KEY) as admin:
        before = len(openai_upstream.requests)
        replies = await asyncio.gather(*(admin.get("/health") for _ in range(20)))
        assert all(r.status_code == 200 for r in replies)
        probes = len(openai_upstream.requests) - before
    assert probes <= 2, f"20 calls to /health sent {probes} probes upstream"
