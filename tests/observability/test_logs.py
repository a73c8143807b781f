"""One structured log line per request: JSON or plain text, never the key, nothing built when off."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from proxyllm.observability import logs
from proxyllm.observability.logs import JsonFormatter, RequestLine, configure_logging, json_logs_wanted
from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.base import free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.limits.conftest import HI, eventually, limits_config, new_key, start


@pytest.fixture
async def proxy(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> ProxyServer:
    return await start(proxy_factory, limits_config(openai_upstream, ollama_upstream))


def request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "proxyllm.requests"]


async def test_one_line_per_request_with_its_facts_and_never_the_key(
    proxy: ProxyServer, admin_for: Any, openai_upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxyllm.requests")
    await admin_for(proxy).post("/team/new", json={"team_id": "loggers"})
    key = await new_key(admin_for(proxy), key_alias="logged-key", team_id="loggers")
    async with httpx.AsyncClient(
        base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {key['key']}"}
    ) as c:
        ok = await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
        openai_upstream.fail(500, "boom")
        failed = await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
    wanted = {ok.headers["x-litellm-call-id"], failed.headers["x-litellm-call-id"]}
    await eventually(lambda: wanted <= {r.request["request_id"] for r in request_records(caplog)})  # type: ignore[attr-defined]
    records = {r.request["request_id"]: r for r in request_records(caplog)}  # type: ignore[attr-defined]
    line = records[ok.headers["x-litellm-call-id"]]
    fields = line.request  # type: ignore[attr-defined]
    assert fields["key_alias"] == "logged-key" and fields["team_id"] == "loggers"
    assert fields["model"] == "gpt-fake" and fields["model_group"] == "gpt-fake"
    assert fields["deployment"] == proxy.runtime.router.deployments[0].id
    assert fields["status"] == 200 and fields["outcome"] == "success" and fields["error"] is None
    assert fields["prompt_tokens"] == 1 and fields["completion_tokens"] == 5 and fields["cost"] == "0.000011"
    assert fields["latency_ms"] > 0 and fields["cache_hit"] is False
    bad = records[failed.headers["x-litellm-call-id"]].request  # type: ignore[attr-defined]
    assert bad["status"] == 500 and bad["error"] == "upstream" and bad["outcome"] == "error"

    for record in records.values():
        for text in (JsonFormatter().format(record), logging.Formatter("%(message)s").format(record)):
            assert key["key"] not in text and key["token"] not in text and MASTER_KEY not in text
    as_json = orjson.loads(JsonFormatter().format(line))
    assert as_json["message"] == "request" and as_json["level"] == "info" and as_json["logger"] == "proxyllm.requests"
    assert as_json["request_id"] == ok.headers["x-litellm-call-id"] and as_json["status"] == 200
    plain = logging.Formatter("%(message)s").format(line)
    assert plain.startswith(f"request {ok.headers['x-litellm-call-id']} 200 chat model=gpt-fake key=logged-key")
    assert "tokens=1+5 cost=0.000011" in plain and "\n" not in plain


async def test_refused_requests_are_logged_too(proxy: ProxyServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="proxyllm.requests")
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})
    assert resp.status_code == 401
    call_id = resp.headers["x-litellm-call-id"]
    await eventually(lambda: any(r.request["request_id"] == call_id for r in request_records(caplog)))  # type: ignore[attr-defined]
    fields = next(r.request for r in request_records(caplog) if r.request["request_id"] == call_id)  # type: ignore[attr-defined]
    assert fields["status"] == 401 and fields["error"] == "authentication" and fields["key_alias"] is None


async def test_nothing_is_built_when_request_logs_are_off(
    proxy: ProxyServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="proxyllm.requests")
    built: list[Any] = []
    monkeypatch.setattr(logs, "request_fields", lambda ctx: built.append(ctx) or {})
    async with httpx.AsyncClient(
        base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"}
    ) as c:
        assert (await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI})).is_success
    assert built == [] and request_records(caplog) == []


def test_json_or_plain_for_the_whole_process(monkeypatch: pytest.MonkeyPatch) -> None:
    assert json_logs_wanted(True, {}) and not json_logs_wanted(False, {})
    assert json_logs_wanted(False, {"JSON_LOGS": "True"})
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    configure_logging(json_logs=True)
    logging.getLogger("proxyllm.test").warning("plain %s", "message")
    record = logging.LogRecord("proxyllm.requests", logging.INFO, __file__, 1, RequestLine({}), None, None)
    record.request = {"request_id": "r-1", "status": 200}
    handler.handle(record)
    first, second = stream.getvalue().splitlines()
    assert orjson.loads(first) | {"time": None} == {
        "time": None,
        "level": "warning",
        "logger": "proxyllm.test",
        "message": "plain message",
    }
    assert orjson.loads(second)["request_id"] == "r-1"
    uvicorn_stream = io.StringIO()
    uvicorn_handler = logging.StreamHandler(uvicorn_stream)
    monkeypatch.setattr(logging.getLogger("uvicorn.error"), "handlers", [uvicorn_handler])
    monkeypatch.setattr(logging.getLogger("uvicorn.error"), "propagate", False)
    configure_logging(json_logs=True)
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    assert orjson.loads(uvicorn_stream.getvalue())["message"] == "from uvicorn"

    configure_logging(json_logs=False)
    logging.getLogger("proxyllm.test").warning("back to text")
    assert stream.getvalue().splitlines()[-1].endswith("WARNING proxyllm.test: back to text")


async def test_the_cli_writes_json_lines(tmp_path: Path, openai_upstream: FakeOpenAI) -> None:
    """The real server with ``json_logs: true``: every line it writes is JSON, the request line included."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-fake\n"
        "    litellm_params:\n"
        f"      model: openai/gpt-fake\n      api_base: {openai_upstream.api_base}\n      api_key: sk-upstream\n"
        f"general_settings:\n  master_key: {MASTER_KEY}\n"
        "litellm_settings:\n  json_logs: true\n"
    )
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/proxy.db", "LOG_LEVEL": "info"}
    for name in ("REDIS_URL", "REDIS_HOST", "PROXYLLM_CONFIG", "LITELLM_MASTER_KEY", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    log_file = tmp_path / "server.log"
    with log_file.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "proxyllm.cli", "--config", str(config), "--port", str(port)],
            *["--host", "127.0.0.1"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await http.get("/health/liveliness", timeout=1)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.returncode is None and time.monotonic() < deadline, log_file.read_text()
                await asyncio.sleep(0.1)
            auth = {"authorization": f"Bearer {MASTER_KEY}"}
            resp = await http.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI}, headers=auth)
            assert resp.status_code == 200
            request_id = resp.headers["x-litellm-call-id"]
            deadline = time.monotonic() + 10
            while request_id not in log_file.read_text():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    lines = [orjson.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    assert any(line.get("logger") == "uvicorn.error" for line in lines)  # uvicorn's own lines are JSON too
    request = next(line for line in lines if line.get("request_id") == request_id)
    assert request["status"] == 200 and request["model"] == "gpt-fake" and request["cost"] == "0"
    assert MASTER_KEY not in log_file.read_text()


def lines_for(caplog: pytest.LogCaptureFixture, request_id: str) -> list[dict[str, Any]]:
    return [r.request for r in request_records(caplog) if r.request.get("request_id") == request_id]  # type: ignore[attr-defined]


async def test_every_response_gets_exactly_one_line_with_its_error_message(
    proxy: ProxyServer, openai_upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="proxyllm.requests")
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        not_json = await c.post("/v1/chat/completions", content=b"{nope", headers=admin)
        no_messages = await c.post("/v1/chat/completions", json={"model": "gpt-fake"}, headers=admin)
        unknown_path = await c.get("/v1/nothing-here")
        no_key = await c.get("/key/list")
        bad_admin_body = await c.post("/key/generate", json={"max_budget": "lots"}, headers=admin)
        openai_upstream.fail(401, "Incorrect API key provided: sk-upstream-secret. Check it.")
        upstream_refused = await c.post(
            "/v1/chat/completions", json={"model": "gpt-fake", "messages": HI}, headers=admin
        )
        openai_upstream.fail(500, "upstream exploded")
        upstream_5xx = await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": HI}, headers=admin)
        ok = await c.get("/v1/models", headers=admin)
    expected = [
        (not_json, 400, "POST", "/v1/chat/completions", "invalid_request", "not valid JSON"),
        (no_messages, 400, "POST", "/v1/chat/completions", "invalid_request", "messages"),
        (unknown_path, 404, "GET", "/v1/nothing-here", "not_found", "no such endpoint: GET /v1/nothing-here"),
        (no_key, 401, "GET", "/key/list", "authentication", ""),
        (bad_admin_body, 400, "POST", "/key/generate", "invalid_request", "max_budget"),
        (upstream_refused, 401, "POST", "/v1/chat/completions", "authentication", "Incorrect API key provided"),
        (upstream_5xx, 500, "POST", "/v1/chat/completions", "upstream", "upstream exploded"),
        (ok, 200, "GET", "/v1/models", None, None),
    ]
    ids = [resp.headers["x-litellm-call-id"] for resp, *_ in expected]
    await eventually(lambda: all(lines_for(caplog, i) for i in ids))
    for (resp, status, method, path, kind, message), request_id in zip(expected, ids, strict=True):
        assert resp.status_code == status, resp.text
        (fields,) = lines_for(caplog, request_id)  # exactly one line per response
        assert (fields["status"], fields["method"], fields["path"], fields["error"]) == (status, method, path, kind)
        if message is None:
            assert fields["error_message"] is None
        else:
            assert message in fields["error_message"]
            text = logging.Formatter("%(message)s").format(
                next(r for r in request_records(caplog) if r.request["request_id"] == request_id)  # type: ignore[attr-defined]
            )
            assert f"error={kind} message=" in text and "\n" not in text
    everything = "\n".join(JsonFormatter().format(r) for r in request_records(caplog))
    assert "sk-upstream-secret" not in everything and MASTER_KEY not in everything
    assert "sk-upstream-****" in everything  # the upstream's message, its key masked


def test_secrets_are_masked_in_messages() -> None:
    assert logs.mask_secrets("Incorrect API key provided: sk-proj-abcdef123456.") == (
        "Incorrect API key provided: sk-proj-****."
    )
    assert logs.mask_secrets("header Authorization: Bearer abc.def-123456") == "header Authorization: Bearer ****"
    assert logs.mask_secrets("cannot reach postgresql://app:hunter2@db:5432/x") == (
        "cannot reach postgresql://app:****@db:5432/x"
    )
    assert logs.mask_secrets('api_key=abcdef123456, token: "xyz123456" ok') == 'api_key=****, token: "****" ok'
    assert logs.mask_secrets('{"api_key": "abc 123"}') == '{"api_key": "****"}'
    assert logs.mask_secrets("aws_secret_access_key: abcdef") == "aws_secret_access_key: ****"
    for prose in ("max_tokens must be at least 1", "expected a string key: line 1", "no API key: send one"):
        assert logs.mask_secrets(prose) == prose
    assert len(logs.mask_secrets("x" * 5000)) == logs.MAX_MESSAGE


async def test_an_unhandled_exception_is_logged_as_a_500() -> None:
    from proxyllm.observability.access import RequestLog

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    request_log = logging.getLogger("proxyllm.requests")
    request_log.addHandler(handler)
    level = request_log.level
    request_log.setLevel(logging.INFO)
    try:
        with pytest.raises(RuntimeError):
            await RequestLog(broken)({"type": "http", "method": "GET", "path": "/x"}, None, None)
    finally:
        request_log.removeHandler(handler)
        request_log.setLevel(level)
    (record,) = records
    assert record.request["status"] == 500 and record.request["error"] == "internal"  # type: ignore[attr-defined]
    assert record.request["error_message"] == "unhandled RuntimeError"  # type: ignore[attr-defined]
