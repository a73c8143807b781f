"""Item 5: failed authentication is throttled per client address and per key prefix (429 + Retry-After),
on the API, the model endpoints and the dashboard's sign-in; signing out revokes the session on the
server, and so does rotating the key it was made with."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ui.test_security import Browser

HI = [{"role": "user", "content": "hi"}]


def config(openai_upstream: FakeOpenAI, redis: str | None = None, **general: Any) -> str:
    router: dict[str, Any] = {}
    if redis:
        router = {"redis_url": redis, "redis_namespace": f"i15-{uuid.uuid4().hex[:10]}"}
    return yaml.safe_dump(
        {
            "model_list": [
                {
                    "model_name": "gpt-fake",
                    "litellm_params": {"model": "openai/gpt-fake", "api_base": openai_upstream.api_base},
                }
            ],
            "router_settings": router,
            "general_settings": {
                "master_key": MASTER_KEY,
                "trusted_proxies": ["127.0.0.1"],
                "auth_failure_limit": 5,
                "auth_failure_window": 30,
                **general,
            },
        }
    )


@pytest.fixture(scope="module")
async def proxy(module_database_url: str, module_proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    """One proxy per module and database: the throttle counts per client address and per key prefix, and
    every case here comes from addresses (and uses prefixes) of its own."""
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory, config(openai_upstream), env={"DATABASE_URL": module_database_url}
    )
    return server


def client(proxy: ProxyServer, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=proxy.url, timeout=30, headers={"x-forwarded-for": address})


def wrong_key() -> str:
    return "sk-" + secrets.token_urlsafe(24)


async def test_wrong_keys_from_one_address_are_throttled(proxy: ProxyServer) -> None:
    async with client(proxy, "198.51.100.7") as attacker, client(proxy, "198.51.100.8") as bystander:
        statuses = []
        for _ in range(12):
            resp = await attacker.get("/key/info", headers={"authorization": f"Bearer {wrong_key()}"})
            statuses.append(resp.status_code)
        assert statuses[:5] == [401] * 5
        assert set(statuses[5:]) == {429}
        resp = await attacker.get("/key/info", headers={"authorization": f"Bearer {wrong_key()}"})
        assert resp.status_code == 429
        assert 1 <= int(resp.headers["retry-after"]) <= 30
        assert resp.json()["error"]["type"] == "rate_limit_error"
        # The model endpoints too, even with a valid key, from the blocked address.
        chat = await attacker.post(
            "/v1/chat/completions",
            json={"model": "gpt-fake", "messages": HI},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
        assert chat.status_code == 429 and "retry-after" in chat.headers
        # Another address is not affected.
        fine = await bystander.get("/key/list", headers={"authorization": f"Bearer {MASTER_KEY}"})
        assert fine.status_code == 200


async def test_one_key_prefix_from_many_addresses_is_throttled(proxy: ProxyServer) -> None:
    prefix = "sk-" + secrets.token_urlsafe(9)[:9]
    statuses = []
    for i in range(8):
        async with client(proxy, f"203.0.113.{i + 1}") as c:
            resp = await c.post(
                "/v1/chat/completions",
                json={"model": "gpt-fake", "messages": HI},
                headers={"authorization": f"Bearer {prefix}{secrets.token_urlsafe(16)}"},
            )
            statuses.append(resp.status_code)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}


async def test_dashboard_sign_in_is_throttled(proxy: ProxyServer) -> None:
    async with client(proxy, "192.0.2.44") as raw:
        browser = Browser(raw)
        statuses = [(await browser.sign_in(wrong_key())).status_code for _ in range(8)]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}


async def test_sign_out_revokes_the_session_on_the_server(proxy: ProxyServer) -> None:
    async with client(proxy, "192.0.2.50") as raw:
        browser = Browser(raw)
        assert (await browser.sign_in(MASTER_KEY)).status_code == 200
        stolen = raw.cookies.get("proxyllm_session", domain="127.0.0.1", path="/ui")
        assert stolen and (await browser.get("/key/list")).status_code == 200
        out = await raw.post("/ui/logout", headers={"x-csrf-token": browser.csrf})
        assert out.status_code == 200
    async with client(proxy, "192.0.2.51") as thief:
        thief.cookies.set("proxyllm_session", stolen, domain="127.0.0.1", path="/ui")
        assert (await thief.get("/ui/api/key/list")).status_code == 401
        assert (await thief.get("/ui/session")).json()["signed_in"] is False


async def test_key_rotation_ends_its_sessions(proxy: ProxyServer) -> None:
    async with client(proxy, "192.0.2.60") as admin:
        admin.headers["authorization"] = f"Bearer {MASTER_KEY}"
        key = (await admin.post("/key/generate", json={"key_alias": "rotated"})).json()["key"]
        async with client(proxy, "192.0.2.61") as raw:
            browser = Browser(raw)
            assert (await browser.sign_in(key)).status_code == 200
            assert (await browser.get("/key/info")).status_code == 200
            rotated = await admin.post("/key/regenerate", json={"key": key})
            assert rotated.status_code == 200, rotated.text
            assert (await browser.get("/key/info")).status_code == 401
            assert (await raw.get("/ui/session")).json()["signed_in"] is False


async def test_revocation_is_shared_through_redis(
    proxy_factory: Any, openai_upstream: FakeOpenAI, redis_url: str, tmp_path: Any
) -> None:
    text = config(openai_upstream, redis=redis_url)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/shared.db"}
    one: ProxyServer = await asyncio.to_thread(proxy_factory, text, env=env)
    two: ProxyServer = await asyncio.to_thread(proxy_factory, text, env=env)
    async with client(one, "192.0.2.70") as raw:
        browser = Browser(raw)
        assert (await browser.sign_in(MASTER_KEY)).status_code == 200
        cookie = raw.cookies.get("proxyllm_session", domain="127.0.0.1", path="/ui")
        async with client(two, "192.0.2.71") as other:
            other.cookies.set("proxyllm_session", cookie, domain="127.0.0.1", path="/ui")
            assert (await other.get("/ui/api/key/list")).status_code == 200  # the same session, replica two
            assert (await raw.post("/ui/logout", headers={"x-csrf-token": browser.csrf})).status_code == 200
            assert (await other.get("/ui/api/key/list")).status_code == 401  # revoked on replica one
    # Failures add up across replicas: replica two blocks at its third failure (the sixth in all).
    async with client(one, "198.51.100.90") as a, client(two, "198.51.100.90") as b:
        for c in (a, b, a, b, a, b):
            assert (await c.get("/key/info", headers={"authorization": f"Bearer {wrong_key()}"})).status_code == 401
        assert (await b.get("/key/info", headers={"authorization": f"Bearer {wrong_key()}"})).status_code == 429
