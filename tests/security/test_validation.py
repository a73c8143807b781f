"""Item 6: admin and webhook input is checked against what the database can hold — 400 naming the field,
never a 500 — and non-finite numbers are refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ops.conftest import ops_config, start

BILLING_ENV = {
    "STRIPE_API_KEY": "sk_test_not_a_real_key",
    "STRIPE_USE_PREPAID_BALANCE": "true",
    "STRIPE_WEBHOOK_SECRET": "whsec_validation_tests",
    "STRIPE_API_BASE": "http://127.0.0.1:9",
}

BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("/key/generate", {"key_alias": "a\x00b"}, "key_alias"),
    ("/key/generate", {"max_budget": 1e30}, "max_budget"),
    ("/key/generate", {"rpm_limit": 2**40}, "rpm_limit"),
    ("/key/generate", {"tpm_limit": -1}, "tpm_limit"),
    ("/key/generate", {"duration": "999999999999d"}, "duration"),
    ("/key/generate", {"budget_duration": "99999999999999mo"}, "budget_duration"),
    ("/key/generate", {"user_id": "u" * 256}, "user_id"),
    ("/key/generate", {"metadata": {"note": "x\x00"}}, "metadata.note"),
    ("/key/generate", {"model_rpm_limit": {"gpt-fake": 2**40}}, "model_rpm_limit.gpt-fake"),
    ("/key/delete", {"keys": ["sk-\x00"]}, "keys[0]"),
    ("/key/update", {"key": "sk-x" * 200}, "key"),
    ("/user/new", {"user_id": "u" * 256}, "user_id"),
    ("/user/new", {"user_id": "ok", "user_email": "e" * 300}, "user_email"),
    ("/user/new", {"user_id": "ok", "max_budget": 1e30}, "max_budget"),
    ("/team/new", {"team_id": "t\x00"}, "team_id"),
    ("/team/new", {"team_id": "t", "rpm_limit": 2**40}, "rpm_limit"),
    ("/team/update", {"team_id": "t", "blocked": None}, "blocked"),
    ("/user/update", {"user_id": "u", "user_role": None}, "user_role"),
    ("/model/update", {"id": "m\x00"}, "id"),
    ("/model/new", {"model_name": "n\x00", "litellm_params": {"model": "openai/x"}}, "model_name"),
    ("/model/delete", {"id": "m" * 65}, "id"),
    ("/stripe/balance/adjust", {"account_id": "a", "amount": -1.7976931348623157e308, "reason": "r"}, "amount"),
    (
        "/stripe/topup",
        {"amount": 5.1e27, "success_url": "https://x/s", "cancel_url": "https://x/c", "account_id": "a"},
        "amount",
    ),
]

QUERIES: list[tuple[str, dict[str, Any], str | None]] = [
    ("/spend/logs", {"request_id": "\x00"}, "request_id"),
    ("/key/list", {"page": 10**15}, "page"),
    ("/user/list", {"page": 10**15}, "page"),
    ("/team/list", {"page": 10**15}, "page"),
    ("/audit/logs", {"page": 10**15}, "page"),
    ("/user/info", {"user_id": "\x00"}, "user_id"),
    ("/stripe/transactions", {"starting_after": "1e20"}, "starting_after"),
    ("/stripe/transactions", {"starting_after": str(10**20)}, "starting_after"),
    ("/stripe/balances", {"offset": str(10**20)}, "offset"),
]


@pytest.fixture
async def proxy(database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    """A proxy of its own, for cases that assert on everything in a table (no key at all, one audit row)."""
    return await start(proxy_factory, ops_config(openai_upstream), database_url, **BILLING_ENV)


@pytest.fixture(scope="module")
async def shared(module_database_url: str, module_proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    """``proxy`` shared by the module's cases that only make requests and rows of their own (SQLite and
    PostgreSQL)."""
    return await start(module_proxy_factory, ops_config(openai_upstream), module_database_url, **BILLING_ENV)


def client(proxy: ProxyServer, key: str = MASTER_KEY) -> httpx.AsyncClient:
    # a new connection per request: after a 500 the server closes the connection
    return httpx.AsyncClient(
        base_url=proxy.url,
        timeout=30,
        headers={"authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def assert_400(resp: httpx.Response, param: str | None) -> None:
    assert resp.status_code == 400, f"{resp.request.url}: {resp.status_code} {resp.text}"
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param, error
    assert "Traceback" not in resp.text


async def test_admin_bodies_out_of_the_databases_range(proxy: ProxyServer) -> None:
    async with client(proxy) as c:
        for path, body, param in BODIES:
            assert_400(await c.post(path, json=body), param)
        # Nothing half-written: the keys and users named above do not exist.
        listed = (await c.get("/key/list")).json()
        assert listed["total_count"] == 0


async def test_query_strings_out_of_range(shared: ProxyServer) -> None:
    async with client(shared) as c:
        for path, params, param in QUERIES:
            assert_400(await c.get(path, params=params), param)


async def test_customer_key_with_nul_in_spend_logs(shared: ProxyServer) -> None:
    async with client(shared) as c:
        key = (await c.post("/key/generate", json={"key_alias": "customer"})).json()["key"]
    async with client(shared, key) as customer:
        assert_400(await customer.get("/spend/logs", params={"request_id": "a\x00"}), "request_id")
        assert_400(await customer.get("/stripe/transactions", params={"starting_after": str(10**20)}), None)


async def test_non_finite_json_numbers_are_refused(shared: ProxyServer) -> None:
    async with client(shared) as c:
        for raw in (b'{"max_budget": NaN}', b'{"max_budget": Infinity}', b'{"metadata": {"x": -Infinity}}'):
            resp = await c.post("/key/generate", content=raw, headers={"content-type": "application/json"})
            assert_400(resp, None)
        resp = await c.post(
            "/key/generate", content=b'{"rpm_limit": 1e309}', headers={"content-type": "application/json"}
        )
        assert_400(resp, None)


async def test_ordinary_values_still_accepted(shared: ProxyServer) -> None:
    async with client(shared) as c:
        resp = await c.post(
            "/key/generate",
            json={"key_alias": "é-ok", "max_budget": 1000000, "rpm_limit": 2**31 - 1, "duration": "36500d"},
        )
        assert resp.status_code == 200, resp.text
        assert (await c.get("/key/list", params={"page": 1000})).status_code == 200


async def test_llama3_tool_calls_of_the_wrong_type(shared_proxy: ProxyServer) -> None:
    bodies = [
        {"model": "llama3", "messages": [{"role": "assistant", "content": None, "tool_calls": [1]}]},
        {"model": "llama3", "messages": [{"role": "assistant", "tool_calls": [{"function": 1}]}]},
        {"model": "llama3", "messages": [{"role": "assistant", "tool_calls": "x"}]},
        {"model": "llama3", "messages": [1]},
    ]
    async with client(shared_proxy) as http:
        for body in bodies:
            resp = await http.post("/v1/chat/completions", json=body)
            assert resp.status_code == 400, f"{body}: {resp.status_code} {resp.text}"
            assert resp.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "NaN"])
async def test_non_finite_timeout_header(shared_proxy: ProxyServer, value: str) -> None:
    async with client(shared_proxy) as http:
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-litellm-timeout": value},
        )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "x-litellm-timeout"


async def test_deleting_the_same_user_or_team_twice_in_one_call(proxy: ProxyServer) -> None:
    async with client(proxy) as c:
        assert (await c.post("/user/new", json={"user_id": "twice", "auto_create_key": False})).status_code == 200
        assert (await c.post("/team/new", json={"team_id": "twice-team"})).status_code == 200
        resp = await c.post("/user/delete", json={"user_ids": ["twice", "twice"]})
        assert resp.status_code == 200, resp.text
        resp = await c.post("/team/delete", json={"team_ids": ["twice-team", "twice-team"]})
        assert resp.status_code == 200, resp.text
        audit = (await c.get("/audit/logs", params={"action": "user.delete"})).json()["data"]
        assert len(audit) == 1
