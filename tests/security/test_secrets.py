"""Item 2: secrets never leave the sealed column — not in audit rows, logs, /model/info, /health — and stored
models cannot read the proxy's own secrets from its environment."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from proxyllm.core.masking import mask_text, mask_url, masked, url_has_credentials
from proxyllm.db.tables_ops import AuditLog, StoredModel
from tests.conftest import ProxyServer
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ops.conftest import UPSTREAM_SECRET, admin, chat, db_rows, ops_config, start

HEADER_SECRET = "apim-subscription-secret-5d1e"
URL_PASSWORD = "url-password-8b2c"
QUERY_SECRET = "query-secret-3f9a"


def with_credentials(base: str) -> str:
    """``http://127.0.0.1:port/v1`` -> ``http://ann:<password>@127.0.0.1:port/v1?key=<secret>``."""
    scheme, _, rest = base.partition("://")
    return f"{scheme}://ann:{URL_PASSWORD}@{rest}?key={QUERY_SECRET}"


def leaks(text: str) -> list[str]:
    return [s for s in (HEADER_SECRET, URL_PASSWORD, QUERY_SECRET, UPSTREAM_SECRET) if s in text]


@pytest.fixture
async def proxy(database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    """A proxy of its own: for the case that reads the whole audit table and every log line."""
    return await start(proxy_factory, ops_config(openai_upstream), database_url)


@pytest.fixture(scope="module")
async def shared(module_database_url: str, module_proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    """``proxy`` shared by the cases that look only at the models they name (SQLite and PostgreSQL)."""
    return await start(module_proxy_factory, ops_config(openai_upstream), module_database_url)


async def test_model_secrets_stay_out_of_audit_rows_logs_and_responses(
    proxy: ProxyServer, openai_upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {
        "model_name": "azure-ish",
        "litellm_params": {
            "model": "openai/gpt-fake",
            "api_base": with_credentials(openai_upstream.api_base),
            "extra_headers": {"Ocp-Apim-Subscription-Key": HEADER_SECRET},
        },
    }
    async with admin(proxy) as client:
        created = await client.post("/model/new", json=body)
        assert created.status_code == 200, created.text
        model_id = created.json()["model_id"]
        assert not leaks(created.text)
        update = {"id": model_id, "litellm_params": {"api_key": UPSTREAM_SECRET, "api_base": openai_upstream.api_base}}
        updated = await client.post("/model/update", json=update)
        assert updated.status_code == 200, updated.text
        assert not leaks(updated.text)
        info = await client.get("/model/info")
        assert info.status_code == 200 and not leaks(info.text)
        audit = await client.get("/audit/logs")
        assert audit.status_code == 200 and not leaks(audit.text)
        health = await client.get("/health")
        assert health.status_code == 200 and not leaks(health.text)
        deleted = await client.post("/model/delete", json={"id": model_id})
        assert deleted.status_code == 200
    rows = await db_rows(proxy, AuditLog.__table__)
    dump = orjson.dumps(rows, default=str).decode()
    assert "model.new" in dump and "model.update" in dump and "model.delete" in dump
    assert not leaks(dump), "the audit table holds a secret in clear"
    assert "Ocp-Apim-Subscription-Key" in dump  # the header's name is kept, its value masked
    assert not leaks(caplog.text)


async def test_api_base_with_credentials_is_sealed(shared: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    body = {
        "model_name": "cred-url",
        "litellm_params": {"model": "openai/gpt-fake", "api_base": with_credentials(openai_upstream.api_base)},
    }
    async with admin(shared) as client:
        created = await client.post("/model/new", json=body)
        assert created.status_code == 200, created.text
        shown = created.json()["litellm_params"]["api_base"]
        assert shown.startswith("http://****@127.0.0.1") and "key=****" in shown
        # Sent back as shown, the hidden credentials are kept.
        same = {"id": created.json()["model_id"], "litellm_params": {"api_base": shown, "rpm": 5}}
        updated = await client.post("/model/update", json=same)
        assert updated.status_code == 200, updated.text
    rows = await db_rows(shared, StoredModel.__table__)
    (row,) = [r for r in rows if r["model_name"] == "cred-url"]
    assert "api_base" not in (row["litellm_params"] or {})
    assert URL_PASSWORD not in orjson.dumps(row, default=str).decode()
    stored = shared.runtime.ops.models
    assert stored is not None
    (record,) = [r for r in stored.records.values() if r.model_name == "cred-url"]
    assert URL_PASSWORD in record.params["api_base"]  # in memory, in clear: still usable


@pytest.mark.parametrize(
    "var", ["STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "LITELLM_SALT_KEY", "LITELLM_MASTER_KEY", "DATABASE_URL"]
)
async def test_stored_models_cannot_read_the_proxys_own_secrets(
    shared: ProxyServer, openai_upstream: FakeOpenAI, var: str
) -> None:
    body = {
        "model_name": "exfiltrate",
        "litellm_params": {"model": "openai/x", "api_base": openai_upstream.api_base, "api_key": f"os.environ/{var}"},
    }
    async with admin(shared) as client:
        resp = await client.post("/model/new", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "litellm_params.api_key"
    assert var in resp.json()["error"]["message"]
    assert shared.runtime.router.find("exfiltrate") is None


async def test_other_environment_names_still_work(
    database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI
) -> None:
    proxy = await start(proxy_factory, ops_config(openai_upstream), database_url, UPSTREAM_KEY_FOR_TEST="sk-from-env")
    body = {
        "model_name": "from-env",
        "litellm_params": {
            "model": "openai/gpt-fake",
            "api_base": openai_upstream.api_base,
            "api_key": "os.environ/UPSTREAM_KEY_FOR_TEST",
        },
    }
    async with admin(proxy) as client:
        resp = await client.post("/model/new", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["litellm_params"]["api_key"] == "os.environ/UPSTREAM_KEY_FOR_TEST"
    assert (await chat(proxy, "from-env")).status_code == 200


async def test_environment_references_can_be_turned_off(
    database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI
) -> None:
    text = ops_config(openai_upstream, general={"stored_models_env": "off"})
    proxy = await start(proxy_factory, text, database_url, UPSTREAM_KEY_FOR_TEST="sk-from-env")
    body = {
        "model_name": "from-env",
        "litellm_params": {"model": "openai/x", "api_base": "http://h", "api_key": "os.environ/UPSTREAM_KEY_FOR_TEST"},
    }
    async with admin(proxy) as client:
        resp = await client.post("/model/new", json=body)
    assert resp.status_code == 400
    assert "stored_models_env" in resp.json()["error"]["message"]


def test_masking_units() -> None:
    assert url_has_credentials("http://u:p@h/x") and url_has_credentials("https://h/x?sig=abc")
    assert not url_has_credentials("http://hugo:11434") and not url_has_credentials("https://h/v1?api-version=1")
    assert mask_url("http://u:p@h:1/v1?key=s&api-version=2") == "http://****@h:1/v1?key=****&api-version=2"
    assert "secret" not in mask_text("cannot reach upstream http://a:secret@host/v1: refused")
    view = masked({"litellm_params.extra_headers": {"X-Key": "v"}, "litellm_params.api_base": "http://a:b@h"})
    assert view == {"litellm_params.extra_headers": {"X-Key": "****"}, "litellm_params.api_base": "http://****@h"}


def test_log_lines_lose_url_credentials() -> None:
    import io

    from proxyllm.observability.logs import configure_logging

    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        configure_logging(json_logs=False)  # what the CLI's workers run: every root handler gets the filter
        logging.getLogger("proxyllm.test").warning("Ollama at %s did not answer", f"http://ann:{URL_PASSWORD}@h:1")
    finally:
        root.removeHandler(handler)
    assert URL_PASSWORD not in stream.getvalue()
    assert "http://****@h:1" in stream.getvalue()
