"""Models managed at run time, stored in the database: on SQLite and PostgreSQL, across restarts and replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from proxyllm.config.loader import parse_config
from proxyllm.core.errors import StartupError
from proxyllm.db.tables_ops import AuditLog, StoredModel
from proxyllm.server.runtime import Runtime
from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ops.conftest import (
    SALT_KEY,
    UPSTREAM_SECRET,
    admin,
    chat,
    db_rows,
    eventually,
    new_model_body,
    not_serves,
    ops_config,
    serves,
    start,
)


async def test_add_call_restart_call_delete(
    database_url: str,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = await start(proxy_factory, ops_config(openai_upstream), database_url)
    async with admin(proxy) as client:
        resp = await client.post("/model/new", json=new_model_body(openai_upstream))
        assert resp.status_code == 200, resp.text
        created = resp.json()
    model_id = created["model_id"]
    assert created["litellm_params"]["api_key"] != UPSTREAM_SECRET
    assert created["model_info"]["db_model"] is True and created["model_info"]["source"] == "database"

    assert (await chat(proxy, "db-model")).status_code == 200
    sent = openai_upstream.requests[-1]
    assert sent.body["model"] == "gpt-fake-big"
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"  # opened in memory to call the upstream

    # What is stored: no clear-text secret in any column, the sealed form instead.
    for table in (StoredModel, AuditLog):
        rows = await db_rows(proxy, table.__table__)
        assert rows
        assert all(UPSTREAM_SECRET not in str(value) for row in rows for value in row.values())
    [row] = await db_rows(proxy, StoredModel.__table__)
    assert row["secret_params"].startswith("aesgcm1:") and "api_key" not in row["litellm_params"]
    assert row["litellm_params"]["input_cost_per_token"] == "0.000002"  # money stays exact

    # A restart on the same database serves it again, with nothing but the database to go on.
    await asyncio.to_thread(proxy.stop)
    proxy = await start(proxy_factory, ops_config(openai_upstream), database_url)
    assert (await chat(proxy, "db-model")).status_code == 200
    assert openai_upstream.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"

    async with admin(proxy) as client:
        info = (await client.get("/model/info")).json()["data"]
        by_id = {m["model_info"]["id"]: m for m in info}
        assert by_id["config-gpt"]["model_info"]["source"] == "config_file"
        assert by_id["config-gpt"]["litellm_params"]["api_key"] == "sk-****et"
        assert by_id[model_id]["model_info"]["source"] == "database"
        assert (await client.get("/v1/model/info", params={"litellm_model_id": model_id})).json()["data"] == [
            by_id[model_id]
        ]
        assert UPSTREAM_SECRET not in str(info) and "sk-config-file-secret" not in str(info)

        deleted = await client.post("/model/delete", json={"id": model_id})
        assert deleted.status_code == 200, deleted.text
    missing = await chat(proxy, "db-model")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert await db_rows(proxy, StoredModel.__table__) == []
    assert UPSTREAM_SECRET not in caplog.text


async def test_replica_sees_each_change_by_polling(
    database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI
) -> None:
    text = ops_config(openai_upstream)
    env = {"PROXYLLM_MODEL_POLL_SECONDS": "0.2"}  # the shortest the product takes
    first = await start(proxy_factory, text, database_url, **env)
    replica = await start(proxy_factory, text, database_url, **env)
    assert replica.runtime.ops.sync is not None and replica.runtime.ops.sync.redis_url is None
    async with admin(first) as client:
        model_id = (await client.post("/model/new", json=new_model_body(openai_upstream))).json()["model_id"]
        started = time.monotonic()
        await eventually(serves(replica, "db-model"))
        assert time.monotonic() - started < 5
        assert (await chat(replica, "db-model")).status_code == 200
        assert openai_upstream.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"

        updated = await client.post("/model/update", json={"id": model_id, "model_name": "db-renamed"})
        assert updated.status_code == 200, updated.text
        await eventually(serves(replica, "db-renamed"))
        assert replica.runtime.router.find("db-model") is None
        assert (await chat(replica, "db-renamed")).status_code == 200
        # the secret was kept through an update that did not send it
        assert openai_upstream.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"

        assert (await client.post("/model/delete", json={"id": model_id})).status_code == 200
        await eventually(not_serves(replica, "db-renamed"))
    assert (await chat(replica, "db-renamed")).status_code == 404


async def test_replica_sees_each_change_through_redis(
    database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI, redis_url: str, namespace: str
) -> None:
    """Polling is slowed to two minutes, so only the Redis announcement can deliver within seconds."""
    text = ops_config(openai_upstream).replace("num_retries: 0", f"num_retries: 0\n  redis_namespace: {namespace}")
    env = {"REDIS_URL": redis_url, "PROXYLLM_MODEL_POLL_SECONDS": "120"}
    first = await start(proxy_factory, text, database_url, **env)
    replica = await start(proxy_factory, text, database_url, **env)
    sync = replica.runtime.ops.sync
    assert sync is not None and sync.redis_url == redis_url and sync.interval == 120

    async def subscribed() -> bool:
        return sync.subscribed.is_set()

    await eventually(subscribed)
    async with admin(first) as client:
        model_id = (await client.post("/model/new", json=new_model_body(openai_upstream))).json()["model_id"]
        assert await eventually(serves(replica, "db-model"), timeout=5) < 5
        assert (await chat(replica, "db-model")).status_code == 200
        await client.post("/model/update", json={"id": model_id, "model_name": "db-renamed"})
        await eventually(serves(replica, "db-renamed"), timeout=5)
        await client.post("/model/delete", json={"id": model_id})
        await eventually(not_serves(replica, "db-renamed"), timeout=5)


async def test_update_rules(ops_proxy: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    async with admin(ops_proxy) as client:
        body = new_model_body(openai_upstream, id="fixed-id")
        created = (await client.post("/model/new", json=body)).json()
        assert created["model_id"] == "fixed-id"
        masked_key = created["litellm_params"]["api_key"]

        # sending the masked key back (as /model/info shows it) keeps the real one
        resp = await client.post(
            "/model/update", json={"id": "fixed-id", "litellm_params": {"api_key": masked_key, "rpm": 100}}
        )
        assert resp.status_code == 200 and resp.json()["litellm_params"]["rpm"] == 100
        assert (await chat(ops_proxy, "db-model")).status_code == 200
        assert openai_upstream.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"

        # a new key replaces it; null removes a parameter
        new_key = "sk-rotated-upstream-key-999"
        resp = await client.post(
            "/model/update",
            json={"model_info": {"id": "fixed-id"}, "litellm_params": {"api_key": new_key, "rpm": None}},
        )
        assert resp.status_code == 200 and "rpm" not in resp.json()["litellm_params"]
        assert (await chat(ops_proxy, "db-model")).status_code == 200
        assert openai_upstream.requests[-1].headers["Authorization"] == f"Bearer {new_key}"

        async def error(path: str, payload: dict[str, Any], status: int = 400) -> dict[str, Any]:
            resp = await client.post(path, json=payload)
            assert resp.status_code == status, resp.text
            err: dict[str, Any] = resp.json()["error"]
            return err

        assert "config file" in (await error("/model/delete", {"id": "config-gpt"}))["message"]
        assert "<config>" in (await error("/model/update", {"id": "config-gpt", "model_name": "x"}))["message"]
        await error("/model/delete", {"id": "no-such-model"}, 404)
        await error("/model/update", {"id": "no-such-model", "model_name": "x"}, 404)
        await error("/model/update", {"model_name": "x"})
        assert "already" in (await error("/model/new", body))["message"]
        assert "config-gpt" in (await error("/model/new", new_model_body(openai_upstream, id="config-gpt")))["message"]
        bad_provider = new_model_body(openai_upstream, name="bad")
        bad_provider["litellm_params"]["model"] = "nosuchprovider/x"
        assert "unknown provider" in (await error("/model/new", bad_provider))["message"]
        no_model = new_model_body(openai_upstream, name="bad")
        del no_model["litellm_params"]["model"]
        assert (await error("/model/new", no_model))["param"] == "litellm_params.model"
        await error("/model/new", {**new_model_body(openai_upstream), "model_name": "wild/*"})
        await error("/model/new", {**new_model_body(openai_upstream), "unexpected": 1})
        env_ref = new_model_body(openai_upstream, name="env")
        env_ref["litellm_params"]["api_key"] = "os.environ/PROXYLLM_TEST_UNSET_VARIABLE"
        assert "PROXYLLM_TEST_UNSET_VARIABLE" in (await error("/model/new", env_ref))["message"]

    key = (await _new_key(ops_proxy))["key"]
    async with admin(ops_proxy, key) as not_admin:
        assert (await not_admin.post("/model/new", json=body)).status_code == 403
        # a virtual key reads the models it may use, without their addresses or credentials
        seen = await not_admin.get("/model/info")
        assert seen.status_code == 200 and seen.json()["data"]
        assert all(set(m["litellm_params"]) == {"model"} for m in seen.json()["data"])
        assert "api_base" not in seen.text and "sk-" not in seen.text


async def _new_key(proxy: ProxyServer) -> dict[str, Any]:
    async with admin(proxy) as client:
        resp = await client.post("/key/generate", json={})
        assert resp.status_code == 200
        data: dict[str, Any] = resp.json()
        return data


async def test_in_flight_request_survives_delete(ops_proxy: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    async with admin(ops_proxy) as client:
        model_id = (await client.post("/model/new", json=new_model_body(openai_upstream))).json()["model_id"]
        openai_upstream.push(Action(delay=1.0))
        in_flight = asyncio.create_task(chat(ops_proxy, "db-model"))
        await asyncio.sleep(0.3)
        assert (await client.post("/model/delete", json={"id": model_id})).status_code == 200
        assert ops_proxy.runtime.router.find("db-model") is None
        resp = await in_flight
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"]


async def test_other_salt_key_cannot_open_stored_credentials(
    database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI
) -> None:
    proxy = await start(proxy_factory, ops_config(openai_upstream), database_url)
    async with admin(proxy) as client:
        model_id = (await client.post("/model/new", json=new_model_body(openai_upstream))).json()["model_id"]
    other = await start(proxy_factory, ops_config(openai_upstream), database_url, LITELLM_SALT_KEY="another-salt-key")
    assert other.runtime.router.find("db-model") is None
    async with admin(other) as client:
        info = {m["model_info"]["id"]: m for m in (await client.get("/model/info")).json()["data"]}
        assert "LITELLM_SALT_KEY" in info[model_id]["model_info"]["error"]
        ready = (await client.get("/health/readiness")).json()
        assert ready["database_models"]["status"] == "error" and ready["status"] == "healthy"
        # it can still be removed (and re-added by whoever has the credentials)
        assert (await client.post("/model/delete", json={"id": model_id})).status_code == 200


async def test_without_store_model_in_db(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    proxy = await asyncio.to_thread(proxy_factory, standard_config(openai_upstream.api_base, ollama_upstream.url))
    async with admin(proxy) as client:
        resp = await client.post("/model/new", json=new_model_body(openai_upstream))
        assert resp.status_code == 400
        assert "store_model_in_db" in resp.json()["error"]["message"]
        info = (await client.get("/model/info")).json()["data"]
        assert {m["model_name"] for m in info} >= {"gpt-fake", "llama3"}
        assert all(m["model_info"]["db_model"] is False for m in info)
        assert "sk-upstream-secret" not in str(info)


def test_missing_salt_key_falls_back_to_the_master_key_as_litellm_does(
    openai_upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    text = ops_config(openai_upstream)
    runtime = Runtime(parse_config(text), env={"DATABASE_URL": "sqlite:///:memory:"})
    assert runtime.ops.models is not None
    assert "LITELLM_SALT_KEY IS NOT SET" in caplog.text
    no_master = text.replace(f"master_key: {MASTER_KEY}", "master_key: null")
    with pytest.raises(StartupError, match="LITELLM_SALT_KEY"):
        Runtime(parse_config(no_master), env={"DATABASE_URL": "sqlite:///:memory:"})
    plain = text.replace("store_model_in_db: true", "store_model_in_db: false")
    runtime = Runtime(parse_config(plain), env={"DATABASE_URL": "sqlite:///:memory:", "LITELLM_SALT_KEY": SALT_KEY})
    assert runtime.ops.models is None
    assert MASTER_KEY  # the config's admin key stays the test default
