"""Item 8: /openapi.json describes what the app really answers, and a bounded schemathesis pass (fixed
seed, a few examples per operation) over it finds no 5xx and no response that breaks the document."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    MASTER_KEY,
    ProxyServer,
    fresh_postgres_database,
    postgres_template,
    standard_config,
)
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

SEED = "20261129"
EXAMPLES = "4"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MODEL_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages")


@pytest.fixture
async def fuzz_database(tmp_path: Path) -> AsyncIterator[str]:
    """PostgreSQL when DATABASE_URL names one (as CI runs it), else SQLite."""
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql")):
        async with fresh_postgres_database(await postgres_template()) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path}/fuzz.db"


async def fuzz_proxy(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, database_url: str
) -> ProxyServer:
    text = standard_config(openai_upstream.api_base, ollama_upstream.url).replace(
        "general_settings:\n", "general_settings:\n  store_model_in_db: true\n"
    )
    env = {"DATABASE_URL": database_url, "LITELLM_SALT_KEY": "salt-for-the-schemathesis-pass"}
    server: ProxyServer = await asyncio.to_thread(proxy_factory, text, env=env)
    return server


def schemathesis(proxy: ProxyServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{proxy.url}/openapi.json",
        "-H",
        f"Authorization: Bearer {MASTER_KEY}",
        "--checks",
        CHECKS,
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--phases",
        "examples,coverage,fuzzing",
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        *args,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=tmp_path, env=env)


async def test_document_lists_real_statuses_and_the_model_endpoints(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    paths = document["paths"]
    for path in MODEL_PATHS:
        assert "post" in paths[path], path
        assert {"200", "400", "401", "404", "429"} <= set(paths[path]["post"]["responses"])
    for path, item in paths.items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], f"{method} {path}"
            if path not in ("/health/liveliness", "/health/readiness", "/metrics"):
                assert {"400", "401", "403", "404"} <= set(operation["responses"]), f"{method} {path}"
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["required"]) == {"message", "type", "param", "code"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fuzz_database: str,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    # Two passes at once, each against a proxy of its own: every admin, billing, health and dashboard-free
    # operation, valid and invalid input alike; and the model endpoints with schema-valid requests (models
    # the first pass creates are not served by the second's proxy).
    admin = await fuzz_proxy(proxy_factory, openai_upstream, ollama_upstream, fuzz_database)
    models = await fuzz_proxy(proxy_factory, openai_upstream, ollama_upstream, f"sqlite:///{tmp_path}/models.db")
    (tmp_path / "admin").mkdir()
    (tmp_path / "models").mkdir()
    regex = "|".join(MODEL_PATHS) + "|/v1/messages/count_tokens"
    admin_pass, models_pass = await asyncio.gather(
        asyncio.to_thread(schemathesis, admin, tmp_path / "admin", "--exclude-path-regex", f"^({regex})$"),
        asyncio.to_thread(
            schemathesis, models, tmp_path / "models", "--include-path-regex", f"^({regex})$", "--mode", "positive"
        ),
    )
    for result in (admin_pass, models_pass):
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "Tested:" in result.stdout
    assert time.monotonic() - started < 120
