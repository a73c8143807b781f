"""proxyllm.tailnet: which deployments use the tailnet proxy, and the tailnet readiness check."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from proxyllm.config.loader import parse_config
from proxyllm.server.runtime import Runtime
from proxyllm.tailnet import TailnetCheck, proxy_for, read_status_file
from tests.deploy.conftest import HUGO
from tests.deploy.forward_proxy import ForwardProxy
from tests.fakes.base import free_port
from tests.fakes.openai_upstream import FakeOpenAI

PROXY = "http://127.0.0.1:1055"


@pytest.mark.parametrize(
    ("api_base", "setting", "env", "expected"),
    [
        ("http://hugo:11434", None, {"TAILNET_PROXY_URL": PROXY}, PROXY),
        ("http://HUGO:11434/", None, {"TAILNET_PROXY_URL": PROXY}, PROXY),
        ("http://hugo.tail1234.ts.net:11434", None, {"TAILNET_PROXY_URL": PROXY}, PROXY),
        ("http://gpu-box.tail1234.ts.net:8000/v1", None, {"TAILNET_PROXY_URL": PROXY}, PROXY),
        ("http://100.101.102.103:11434", None, {"TAILNET_PROXY_URL": PROXY}, PROXY),
        ("http://100.128.0.1:11434", None, {"TAILNET_PROXY_URL": PROXY}, None),  # outside 100.64.0.0/10
        ("https://api.openai.com/v1", None, {"TAILNET_PROXY_URL": PROXY}, None),
        ("https://api.stripe.com", None, {"TAILNET_PROXY_URL": PROXY}, None),
        ("http://hugo:11434", None, {}, None),  # no tailnet proxy: direct
        ("http://ollama-box:11434", None, {"TAILNET_PROXY_URL": PROXY, "TAILNET_HOSTS": "hugo, ollama-box"}, PROXY),
        ("http://hugo:11434", None, {"TAILNET_PROXY_URL": PROXY, "TAILNET_HOSTS": "other"}, None),
        ("http://internal:8000", True, {"TAILNET_PROXY_URL": PROXY}, PROXY),
        ("http://hugo:11434", False, {"TAILNET_PROXY_URL": PROXY}, None),
        ("https://api.openai.com/v1", "http://corp-proxy:3128", {}, "http://corp-proxy:3128"),
    ],
)
def test_proxy_for(api_base: str, setting: str | bool | None, env: dict[str, str], expected: str | None) -> None:
    assert proxy_for(api_base, setting, env) == expected


def test_status_file_is_key_value_lines(tmp_path: Path) -> None:
    path = tmp_path / "status"
    path.write_text("state=failed\nreason=tailscale up failed (exit 1, state NeedsLogin)\nnoise\nip=\n")
    assert read_status_file(str(path)) == {
        "state": "failed",
        "reason": "tailscale up failed (exit 1, state NeedsLogin)",
        "ip": "",
    }
    assert read_status_file(str(tmp_path / "missing")) is None


class FakeLocalAPI:
    """tailscaled's LocalAPI on a unix socket: GET /localapi/v0/status."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        self.requests: list[tuple[str, str]] = []
        self.dir = Path(tempfile.mkdtemp(prefix="lapi-", dir="/tmp"))
        self.path = str(self.dir / "tailscaled.sock")
        app = web.Application()
        app.router.add_get("/localapi/v0/status", self.serve)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)

    async def serve(self, request: web.Request) -> web.Response:
        self.requests.append((request.host, request.path_qs))
        return web.json_response(self.status)

    async def start(self) -> None:
        await self.runner.setup()
        await web.UnixSite(self.runner, self.path).start()

    async def stop(self) -> None:
        await self.runner.cleanup()
        for child in self.dir.iterdir():
            child.unlink()
        self.dir.rmdir()


@pytest.fixture
async def local_api() -> AsyncIterator[FakeLocalAPI]:
    api = FakeLocalAPI({"BackendState": "Running", "Self": {"TailscaleIPs": ["100.101.102.103"]}})
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def make_check(tmp_path: Path, openai_upstream: FakeOpenAI) -> AsyncIterator[Any]:
    """A TailnetCheck over a runtime with a hugo deployment and a hosted one, for the given env."""
    runtimes: list[Runtime] = []

    async def make(env: dict[str, str], status: str | None = None) -> TailnetCheck:
        env = {"DATABASE_URL": f"sqlite:///{tmp_path}/proxyllm.db", **env}
        if status is not None:
            (tmp_path / "status").write_text(status)
            env["TAILSCALE_STATUS_FILE"] = str(tmp_path / "status")
        config = parse_config(f"""
model_list:
  - model_name: llama3
    litellm_params: {{model: ollama_chat/llama3, api_base: "http://{HUGO}"}}
  - model_name: nomic
    litellm_params: {{model: ollama/nomic-embed-text, api_base: "http://{HUGO}"}}
  - model_name: gpt-fake
    litellm_params: {{model: openai/gpt-fake, api_base: "{openai_upstream.api_base}", api_key: sk-x}}
""")
        runtime = Runtime(config, env=env)
        await runtime.http.start()
        runtimes.append(runtime)
        return TailnetCheck(env, lambda: runtime.router.deployments, runtime.http)

    yield make
    for runtime in runtimes:
        await runtime.http.close()
        await runtime.db.close()


async def test_not_configured_without_a_proxy_or_a_record(make_check: Any) -> None:
    check = await make_check({})
    assert await check() == ("tailnet", {"status": "not_configured", "required": False})
    check = await make_check({"TAILNET_REQUIRED": "1"}, status="state=not_configured\n")
    assert await check() == ("tailnet", {"status": "not_configured", "required": True})


async def test_running_with_every_tailnet_upstream_answering(
    make_check: Any, tailnet_proxy: ForwardProxy, openai_upstream: FakeOpenAI
) -> None:
    check = await make_check({"TAILNET_PROXY_URL": tailnet_proxy.url}, status="state=running\nip=100.1.2.3\n")
    name, result = await check()
    assert name == "tailnet"
    assert result == {"status": "ok", "required": False, "state": "Running", "upstreams": {HUGO: "ok"}}
    # One probe per tailnet origin, through the tailnet proxy; the hosted upstream is not probed.
    assert [(s.method, s.target, s.path) for s in tailnet_proxy.seen] == [("GET", HUGO, "/")]
    assert openai_upstream.requests == []


async def test_an_upstream_the_tailnet_cannot_reach_is_an_error(make_check: Any, tailnet_proxy: ForwardProxy) -> None:
    tailnet_proxy.hosts.clear()  # tailscaled up, but hugo is not reachable from it
    check = await make_check(
        {"TAILNET_PROXY_URL": tailnet_proxy.url, "TAILNET_REQUIRED": "yes"}, status="state=running\n"
    )
    _, result = await check()
    assert result["status"] == "error"
    assert result["required"] is True
    assert result["upstreams"] == {HUGO: "HTTP 502 through the tailnet proxy"}


async def test_a_dead_tailnet_proxy_is_an_error(make_check: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    check = await make_check({"TAILNET_PROXY_URL": dead}, status="state=running\n")
    _, result = await check()
    assert result["status"] == "error"
    assert result["upstreams"][HUGO].startswith("ClientProxyConnectionError")


async def test_the_entrypoint_record_of_a_failure_is_reported(make_check: Any, tailnet_proxy: ForwardProxy) -> None:
    check = await make_check(
        {"TAILNET_PROXY_URL": tailnet_proxy.url},
        status="state=failed\nreason=tailscale up failed (exit 1, state NeedsLogin)\n",
    )
    _, result = await check()
    assert result["status"] == "error"
    assert result["state"] == "failed"
    assert result["reason"] == "tailscale up failed (exit 1, state NeedsLogin)"


async def test_failed_without_a_tailnet_proxy_is_an_error(make_check: Any) -> None:
    check = await make_check({}, status="state=failed\nreason=tailscaled did not start\n")
    _, result = await check()
    assert result == {
        "status": "error",
        "required": False,
        "state": "failed",
        "reason": "tailscaled did not start",
        "upstreams": {},
    }


async def test_live_state_from_tailscaled_wins_over_the_record(
    make_check: Any, tailnet_proxy: ForwardProxy, local_api: FakeLocalAPI
) -> None:
    # The entry point gave up waiting, but tailscaled connected afterwards.
    check = await make_check(
        {"TAILNET_PROXY_URL": tailnet_proxy.url, "TAILSCALE_SOCKET": local_api.path},
        status="state=failed\nreason=not Running after 30s (state Starting)\n",
    )
    _, result = await check()
    assert result == {"status": "ok", "required": False, "state": "Running", "upstreams": {HUGO: "ok"}}
    assert local_api.requests == [("local-tailscaled.sock", "/localapi/v0/status?peers=false")]


async def test_live_state_that_is_not_running_is_an_error_with_tailscaled_health(
    make_check: Any, tailnet_proxy: ForwardProxy, local_api: FakeLocalAPI
) -> None:
    local_api.status = {"BackendState": "NeedsLogin", "Health": ["You are logged out.", "not in map poll"]}
    check = await make_check(
        {"TAILNET_PROXY_URL": tailnet_proxy.url, "TAILSCALE_SOCKET": local_api.path}, status="state=running\n"
    )
    _, result = await check()
    assert result["status"] == "error"
    assert result["state"] == "NeedsLogin"
    assert result["reason"] == "You are logged out.; not in map poll"


async def test_a_socket_nobody_answers_on_is_an_error(make_check: Any, tailnet_proxy: ForwardProxy) -> None:
    check = await make_check(
        {"TAILNET_PROXY_URL": tailnet_proxy.url, "TAILSCALE_SOCKET": "/tmp/no-such-dir/tailscaled.sock"},
        status="state=running\n",
    )
    _, result = await check()
    assert result["status"] == "error"
    assert result["state"] == "unreachable"
    assert result["reason"].startswith("tailscaled does not answer on its socket")


async def test_forward_proxy_tunnels_connect_to_tailnet_hosts_only(tailnet_proxy: ForwardProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", tailnet_proxy.port)
    writer.write(f"CONNECT {HUGO} HTTP/1.1\r\nHost: {HUGO}\r\n\r\n".encode())
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    writer.write(f"GET /api/tags HTTP/1.1\r\nHost: {HUGO}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 200")
    assert b"llama3:latest" in response

    reader, writer = await asyncio.open_connection("127.0.0.1", tailnet_proxy.port)
    writer.write(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 502")
    writer.close()
    assert [(s.method, s.target) for s in tailnet_proxy.seen] == [("CONNECT", HUGO), ("CONNECT", "api.openai.com:443")]
