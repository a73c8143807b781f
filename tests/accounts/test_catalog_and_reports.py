"""Model catalog and reports in LiteLLM's shapes: ``/model_group/info``, ``/v2/model/info``, ``/model/info``
for a virtual key, ``/routes``, ``/global/spend/teams``, ``/global/spend/report`` rows with ``team_name``
and ``metadata``, ``/health/readiness`` with ``litellm_version``. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import yaml

from tests.accounts.conftest import HI, new_key, sdk
from tests.conftest import MASTER_KEY, ProxyServer, run_in_proxy
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI


def catalog_config(openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> str:
    return yaml.safe_dump(
        {
            "model_list": [
                {
                    "model_name": "gpt-fake",
                    "litellm_params": {
                        "model": "openai/gpt-fake",
                        "api_base": openai_upstream.api_base,
                        "api_key": "sk-upstream-secret",
                        "input_cost_per_token": 0.000001,
                        "output_cost_per_token": 0.000002,
                        "rpm": 100,
                    },
                    "model_info": {
                        "id": "gpt-a",
                        "max_input_tokens": 8000,
                        "max_output_tokens": 1000,
                        "supports_function_calling": True,
                    },
                },
                {
                    "model_name": "gpt-fake",  # a second deployment: the group shows the most either allows
                    "litellm_params": {
                        "model": "openai/gpt-fake",
                        "api_base": openai_upstream.api_base,
                        "api_key": "sk-upstream-secret",
                        "input_cost_per_token": 0.000003,
                        "rpm": 300,
                    },
                    "model_info": {"id": "gpt-b", "max_input_tokens": 16000, "supports_vision": True},
                },
                {
                    "model_name": "embed-fake",
                    "litellm_params": {"model": "openai/embed-fake", "api_base": openai_upstream.api_base},
                    "model_info": {"id": "embed", "mode": "embedding"},
                },
                {
                    "model_name": "llama3",
                    "litellm_params": {"model": "ollama_chat/llama3", "api_base": ollama_upstream.url},
                    "model_info": {"id": "llama"},
                },
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )


@pytest.fixture
async def catalog_proxy(
    database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    config = catalog_config(openai_upstream, ollama_upstream)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env={"DATABASE_URL": database_url})
    return server


@pytest.fixture(scope="module")
async def shared_catalog_proxy(
    module_database_url: str, module_proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    """``catalog_proxy`` for the module's read-only cases (the catalog, routes, readiness): one per module."""
    config = catalog_config(openai_upstream, ollama_upstream)
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory, config, env={"DATABASE_URL": module_database_url}
    )
    return server


def client_for(proxy: ProxyServer, key: str = MASTER_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}, timeout=30)


async def test_model_group_info_and_model_info_per_key(shared_catalog_proxy: ProxyServer) -> None:
    async with client_for(shared_catalog_proxy) as admin:
        groups = {g["model_group"]: g for g in (await admin.get("/model_group/info")).json()["data"]}
        assert set(groups) == {"gpt-fake", "embed-fake", "llama3"}
        gpt = groups["gpt-fake"]
        assert gpt["providers"] == ["openai"] and gpt["mode"] == "chat"
        assert gpt["max_input_tokens"] == 16000 and gpt["max_output_tokens"] == 1000
        assert gpt["input_cost_per_token"] == 0.000003 and gpt["output_cost_per_token"] == 0.000002
        assert gpt["rpm"] == 300 and gpt["tpm"] is None
        assert gpt["supports_function_calling"] is True and gpt["supports_vision"] is True
        assert gpt["supports_parallel_function_calling"] is False
        assert {"temperature", "tools", "max_tokens", "user"} <= set(gpt["supported_openai_params"])
        assert groups["embed-fake"]["mode"] == "embedding"
        assert "dimensions" in groups["embed-fake"]["supported_openai_params"]
        assert groups["llama3"]["providers"] == ["ollama_chat"]
        one = (await admin.get("/model_group/info", params={"model_group": "llama3"})).json()["data"]
        assert [g["model_group"] for g in one] == ["llama3"]

        admin_info = (await admin.get("/model/info")).json()["data"]
        assert {m["model_info"]["id"] for m in admin_info} == {"gpt-a", "gpt-b", "embed", "llama"}
        assert all("api_base" in m["litellm_params"] for m in admin_info)

        key = (await new_key(admin, models=["llama3"]))["key"]
    async with client_for(shared_catalog_proxy, key) as restricted:
        groups_seen = (await restricted.get("/model_group/info")).json()["data"]
        assert [g["model_group"] for g in groups_seen] == ["llama3"]
        seen = (await restricted.get("/model/info")).json()["data"]
        assert [(m["model_name"], m["model_info"]["id"]) for m in seen] == [("llama3", "llama")]
        assert seen[0]["litellm_params"] == {"model": "ollama_chat/llama3"}
        v2 = (await restricted.get("/v2/model/info")).json()
        assert v2["total_count"] == 1 and v2["data"] == seen
    async with httpx.AsyncClient(base_url=shared_catalog_proxy.url) as anonymous:
        assert (await anonymous.get("/model_group/info")).status_code == 401
        assert (await anonymous.get("/model/info")).status_code == 401


async def test_v2_model_info_pages_sorts_and_filters(shared_catalog_proxy: ProxyServer) -> None:
    async with client_for(shared_catalog_proxy) as admin:
        first = (await admin.get("/v2/model/info", params={"size": 3, "sortBy": "model_name"})).json()
        assert first["total_count"] == 4 and first["total_pages"] == 2 and first["current_page"] == 1
        assert first["size"] == 3 and [m["model_name"] for m in first["data"]] == ["embed-fake", "gpt-fake", "gpt-fake"]
        second = (await admin.get("/v2/model/info", params={"size": 3, "page": 2, "sortBy": "model_name"})).json()
        assert [m["model_name"] for m in second["data"]] == ["llama3"]
        desc = (await admin.get("/v2/model/info", params={"sortBy": "model_name", "sortOrder": "desc"})).json()
        assert desc["data"][0]["model_name"] == "llama3"
        assert (await admin.get("/v2/model/info", params={"search": "LLA"})).json()["total_count"] == 1
        assert (await admin.get("/v2/model/info", params={"model": "gpt-fake"})).json()["total_count"] == 2
        by_id = (await admin.get("/v2/model/info", params={"modelId": "gpt-b"})).json()["data"]
        assert [m["model_info"]["id"] for m in by_id] == ["gpt-b"]
        for params in ({"size": 0}, {"page": 0}, {"sortBy": "secret"}, {"search": "x" * 300}):
            bad = await admin.get("/v2/model/info", params=params)
            assert bad.status_code == 400 and "error" in bad.json(), params


async def test_routes_lists_every_route_with_methods(shared_catalog_proxy: ProxyServer) -> None:
    async with client_for(shared_catalog_proxy) as admin:
        routes = (await admin.get("/routes")).json()["routes"]
    by_path: dict[str, set[str]] = {}
    for route in routes:
        assert {"path", "methods", "name", "endpoint"} <= route.keys()
        by_path.setdefault(route["path"], set()).update(route["methods"] or [])
    assert "POST" in by_path["/v1/chat/completions"]
    assert "POST" in by_path["/end_user/new"] and "GET" in by_path["/budget/list"]
    assert "GET" in by_path["/routes"] and "GET" in by_path["/model_group/info"]


async def test_spend_per_team_and_report_rows(catalog_proxy: ProxyServer) -> None:
    async with client_for(catalog_proxy) as admin:
        made = await admin.post("/team/new", json={"team_id": "t-1", "team_alias": "Search"})
        assert made.status_code == 200, made.text
        team_key = await new_key(admin, team_id="t-1")
        lone_key = await new_key(admin)
        for key, times in ((team_key["key"], 2), (lone_key["key"], 1)):
            for _ in range(times):
                await sdk(catalog_proxy, key).chat.completions.create(model="gpt-fake", messages=HI, user="buyer")
        await asyncio.to_thread(run_in_proxy, catalog_proxy, catalog_proxy.runtime.spend.flush())

        teams = (await admin.get("/global/spend/teams")).json()
        assert set(teams) == {"daily_spend", "teams", "total_spend_per_team"}
        assert teams["teams"] == ["Search", "Unassigned"]
        totals = {t["team_id"]: t["total_spend"] for t in teams["total_spend_per_team"]}
        assert totals["Search"] > 0 and totals["Unassigned"] > 0  # (the two deployments' prices differ)
        [day] = teams["daily_spend"]
        assert set(day) == {"date", "Search", "Unassigned"} and len(day["date"]) == 10

        [row] = (await admin.get("/global/spend/report")).json()
        assert row["group_by_day"] == day["date"]
        by_team = {t["team"]: t for t in row["teams"]}
        search = by_team["t-1"]
        assert search["team_name"] == "Search" and by_team[None]["team_name"] == "Unassigned Team"
        assert search["total_spend"] == pytest.approx(totals["Search"]) and search["requests"] == 2
        [meta] = search["metadata"]
        assert meta["model"] == "gpt-fake" and meta["api_key"] == team_key["token"]
        assert meta["spend"] == pytest.approx(search["total_spend"]) and meta["total_tokens"] > 0

        [customers] = (await admin.get("/global/spend/report", params={"group_by": "customer"})).json()
        assert [c["customer"] for c in customers["customers"]] == ["buyer"]
        assert len(customers["customers"][0]["metadata"]) == 2  # one row per api key
        [keys] = (await admin.get("/global/spend/report", params={"group_by": "api_key"})).json()
        assert {k["api_key"] for k in keys["api_keys"]} == {team_key["token"], lone_key["token"]}
        bad = await admin.get("/global/spend/report", params={"group_by": "secrets"})
        assert bad.status_code == 400

        key = lone_key["key"]
    async with client_for(catalog_proxy, key) as not_admin:
        assert (await not_admin.get("/global/spend/teams")).status_code == 403


async def test_readiness_names_the_litellm_version(shared_catalog_proxy: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=shared_catalog_proxy.url) as anonymous:
        ready = (await anonymous.get("/health/readiness")).json()
    assert ready["litellm_version"] == "1.108.7" and ready["proxyllm_version"]
