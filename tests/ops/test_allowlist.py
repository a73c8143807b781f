"""The IP allowlist and the client address: the middleware as an ASGI app with crafted scopes, then end to end."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from proxyllm.config.loader import parse_config
from proxyllm.core.clients import (
    ClientResolver,
    Networks,
    check_key_client,
    check_key_metadata,
    client_address,
    parse_address,
)
from proxyllm.core.errors import ProxyError, StartupError
from proxyllm.ops.allowlist import IPAllowlistMiddleware
from proxyllm.server.runtime import Runtime
from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ops.conftest import HI


class Downstream:
    """The app behind the middleware: records what reached it and the client address it saw."""

    def __init__(self, key_ips: list[str] | None = None) -> None:
        self.calls: list[str | None] = []
        self.key_ips = key_ips

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.key_ips is not None:
            check_key_client(self.key_ips)  # what the Authenticator does for a key with allowed_ips
        self.calls.append(client_address(scope))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def scope(peer: str | None, path: str = "/v1/chat/completions", **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "path": path,
        "client": (peer, 50000) if peer else None,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


async def call(app: Any, s: dict[str, Any]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(s, receive, send)
    except ProxyError as err:  # raised by the per-key check inside the app
        return err.status, err.body()
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def middleware(
    allowed: list[str] | None,
    trusted: list[str] | None = None,
    header: str = "x-forwarded-for",
    key_ips: list[str] | None = None,
) -> tuple[IPAllowlistMiddleware, Downstream]:
    inner = Downstream(key_ips)
    app = IPAllowlistMiddleware(
        inner,
        allowed=Networks.parse(allowed, "allowed_ips") if allowed is not None else None,
        resolver=ClientResolver(Networks.parse(trusted or [], "trusted_proxies"), header),
    )
    return app, inner


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("10.0.0.0", 200),  # first address of the range
        ("10.0.0.255", 200),  # last address of the range
        ("10.0.1.0", 403),  # one past the end
        ("9.255.255.255", 403),  # one before the start
        ("192.168.1.7", 200),  # a single address
        ("192.168.1.8", 403),
        ("::ffff:10.0.0.7", 200),  # IPv4-mapped IPv6 is the IPv4 address
        ("2001:db8::1", 200),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 200),  # last of 2001:db8::/32
        ("2001:db9::", 403),
        ("::1", 403),
        ("not-an-ip", 403),
        (None, 403),  # no peer at all (e.g. a unix socket) is not on the list
    ],
)
async def test_allowed_and_refused_addresses(peer: str | None, expected: int) -> None:
    app, inner = middleware(["10.0.0.0/24", "192.168.1.7", "2001:db8::/32"])
    status, body = await call(app, scope(peer))
    assert status == expected
    if expected == 403:
        error = orjson.loads(body)["error"]
        assert error["type"] == "permission_error" and error["code"] == "ip_not_allowed"
        assert "allowed_ips" in error["message"]
        assert inner.calls == []  # refused before any other work


async def test_health_endpoints_stay_reachable() -> None:
    app, inner = middleware(["10.0.0.0/8"])
    for path in ("/health/liveliness", "/health/liveness", "/health/readiness"):
        assert (await call(app, scope("203.0.113.9", path)))[0] == 200
    assert (await call(app, scope("203.0.113.9", "/health")))[0] == 403  # the authenticated probe is not exempt
    assert (await call(app, scope("203.0.113.9", "/key/generate")))[0] == 403
    assert inner.calls == ["203.0.113.9"] * 3


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    app, inner = middleware(["10.0.0.0/8"], trusted=["172.16.0.1"])
    assert (await call(app, scope("203.0.113.9", x_forwarded_for="10.1.2.3")))[0] == 403
    assert (await call(app, scope("203.0.113.9", x_real_ip="10.1.2.3")))[0] == 403
    # no trusted proxies at all: the header never counts
    app, inner = middleware(["10.0.0.0/8"])
    assert (await call(app, scope("203.0.113.9", x_forwarded_for="10.1.2.3")))[0] == 403
    assert (await call(app, scope("10.9.9.9", x_forwarded_for="203.0.113.9")))[0] == 200
    assert inner.calls == ["10.9.9.9"]


async def test_trusted_proxy_is_honoured() -> None:
    app, inner = middleware(["198.51.100.0/24"], trusted=["10.0.0.0/8", "fd00::/8"])
    assert (await call(app, scope("10.0.0.2", x_forwarded_for="198.51.100.7")))[0] == 200
    assert (await call(app, scope("10.0.0.2", x_forwarded_for="203.0.113.9")))[0] == 403
    assert (await call(app, scope("fd00::2", x_forwarded_for="198.51.100.8")))[0] == 200
    # the peer itself is not a client: with no header it stands for itself, and is not on the list
    assert (await call(app, scope("10.0.0.2")))[0] == 403
    assert inner.calls == ["198.51.100.7", "198.51.100.8"]


async def test_forwarded_for_is_read_right_to_left_past_trusted_hops() -> None:
    app, inner = middleware(None, trusted=["10.0.0.0/8"])
    # a client-supplied (spoofed) first entry, then the real client as the trusted proxy saw it
    await call(app, scope("10.0.0.2", x_forwarded_for="198.51.100.1, 203.0.113.9"))
    # two trusted hops in a row; several header lines count as one list
    await call(app, scope("10.0.0.2", x_forwarded_for="203.0.113.10, 10.0.0.5"))
    s = scope("10.0.0.2")
    s["headers"] = [(b"x-forwarded-for", b"203.0.113.11"), (b"x-forwarded-for", b"10.0.0.6")]
    await call(app, s)
    # every hop trusted: the farthest one; garbage further out: stop at the last trusted hop
    await call(app, scope("10.0.0.2", x_forwarded_for="10.0.0.7, 10.0.0.8"))
    await call(app, scope("10.0.0.2", x_forwarded_for="garbage, 10.0.0.9"))
    # ports and brackets as some proxies write them; IPv6
    await call(app, scope("10.0.0.2", x_forwarded_for="[2001:db8::5]:443"))
    await call(app, scope("10.0.0.2", x_forwarded_for="203.0.113.12:5555"))
    assert inner.calls == [
        "203.0.113.9",
        "203.0.113.10",
        "203.0.113.11",
        "10.0.0.7",
        "10.0.0.9",
        "2001:db8::5",
        "203.0.113.12",
    ]


async def test_single_address_header_as_railway_sends_it() -> None:
    """Railway's edge rewrites X-Forwarded-For to '<client>, <edge address>' and puts the client in X-Real-IP."""
    app, inner = middleware(["198.51.100.0/24"], trusted=["100.64.0.0/10"], header="x-real-ip")
    s = scope("100.64.0.3", x_forwarded_for="198.51.100.20, 79.127.151.146", x_real_ip="198.51.100.20")
    assert (await call(app, s))[0] == 200
    assert (await call(app, scope("100.64.0.3", x_real_ip="203.0.113.9")))[0] == 403
    assert (await call(app, scope("203.0.113.9", x_real_ip="198.51.100.20")))[0] == 403  # not from the edge
    assert inner.calls == ["198.51.100.20"]


async def test_per_key_allowed_ips() -> None:
    app, _ = middleware(None, trusted=["10.0.0.1"], key_ips=["203.0.113.0/28", "2001:db8::/64"])
    assert (await call(app, scope("203.0.113.15")))[0] == 200
    assert (await call(app, scope("203.0.113.16")))[0] == 403
    assert (await call(app, scope("2001:db8::abcd")))[0] == 200
    assert (await call(app, scope("2001:db8:0:1::1")))[0] == 403
    assert (await call(app, scope("10.0.0.1", x_forwarded_for="203.0.113.1")))[0] == 200
    assert (await call(app, scope("10.0.0.2", x_forwarded_for="203.0.113.1")))[0] == 403
    status, body = await call(app, scope("198.51.100.1"))
    assert status == 403 and b"198.51.100.1" in body and b"metadata.allowed_ips" in body
    # an unparseable stored entry refuses the key everywhere rather than letting everyone in
    broken, _ = middleware(None, key_ips=["203.0.113.0/28", "nonsense"])
    assert (await call(broken, scope("203.0.113.1")))[0] == 403


def test_key_metadata_is_checked_on_write() -> None:
    check_key_metadata(None)
    check_key_metadata({"owner": "x"})
    check_key_metadata({"allowed_ips": ["10.0.0.0/8", "2001:db8::1"]})
    for bad in (["10.0.0.0/33"], "10.0.0.1", [], ["10.0.0.5/24"], [42]):
        with pytest.raises(ProxyError) as info:
            check_key_metadata({"allowed_ips": bad})
        assert info.value.status == 400 and info.value.param == "metadata.allowed_ips"


def test_parse_address_forms() -> None:
    assert str(parse_address("::ffff:192.0.2.1")) == "192.0.2.1"
    assert str(parse_address(" 192.0.2.1:80 ")) == "192.0.2.1"
    assert str(parse_address("[::1]:8080")) == "::1"
    assert parse_address("unknown") is None
    assert parse_address("") is None


def test_bad_settings_are_start_up_errors(openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> None:
    base = standard_config(openai_upstream.api_base, ollama_upstream.url)
    for setting in ("  allowed_ips: ['10.0.0.0/33']", "  trusted_proxies: ['proxy.example']"):
        text = base.replace("general_settings:\n", f"general_settings:\n{setting}\n")
        with pytest.raises(StartupError) as info:
            Runtime(parse_config(text, source="cfg.yaml"), env={"DATABASE_URL": "sqlite:///:memory:"})
        assert "cfg.yaml: general_settings." in str(info.value)


# -- end to end: real sockets from different loopback addresses --------------------------------


def from_address(proxy: ProxyServer, address: str, **headers: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(
        base_url=proxy.url,
        transport=transport,
        timeout=30,
        headers={"authorization": f"Bearer {MASTER_KEY}", **headers},
    )


async def start_with(proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, general: str) -> Any:
    text = standard_config(openai_upstream.api_base, ollama_upstream.url)
    text = text.replace("general_settings:\n", f"general_settings:\n{general}\n")
    return await asyncio.to_thread(proxy_factory, text)


async def test_allowlist_end_to_end(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    proxy = await start_with(
        proxy_factory, openai_upstream, ollama_upstream, "  allowed_ips: ['127.0.0.2', '10.20.0.0/16']"
    )
    body = {"model": "gpt-fake", "messages": HI}
    async with from_address(proxy, "127.0.0.2") as allowed, from_address(proxy, "127.0.0.1") as refused:
        assert (await allowed.post("/v1/chat/completions", json=body)).status_code == 200
        resp = await refused.post("/v1/chat/completions", json=body)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "ip_not_allowed"
        assert (await refused.get("/key/list")).status_code == 403
        assert (await refused.get("/health/readiness")).status_code == 200
        assert (await refused.get("/health/liveliness")).status_code == 200
        # 127.0.0.1 is not a trusted proxy here, so its X-Forwarded-For is not believed
        spoofed = await refused.post("/v1/chat/completions", json=body, headers={"x-forwarded-for": "10.20.1.1"})
        assert spoofed.status_code == 403
    assert len(openai_upstream.requests) == 1


async def test_trusted_proxy_end_to_end(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    proxy = await start_with(
        proxy_factory,
        openai_upstream,
        ollama_upstream,
        "  allowed_ips: ['10.20.0.0/16']\n  trusted_proxies: ['127.0.0.3']",
    )
    body = {"model": "gpt-fake", "messages": HI}
    async with from_address(proxy, "127.0.0.3") as edge, from_address(proxy, "127.0.0.1") as other:
        ok = await edge.post("/v1/chat/completions", json=body, headers={"x-forwarded-for": "6.6.6.6, 10.20.3.4"})
        assert ok.status_code == 200
        outside = await edge.post("/v1/chat/completions", json=body, headers={"x-forwarded-for": "10.20.3.4, 6.6.6.6"})
        assert outside.status_code == 403 and "6.6.6.6" in outside.json()["error"]["message"]
        assert (
            await other.post("/v1/chat/completions", json=body, headers={"x-forwarded-for": "10.20.3.4"})
        ).status_code == 403


async def test_per_key_allowed_ips_end_to_end(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    proxy = await start_with(proxy_factory, openai_upstream, ollama_upstream, "")
    body = {"model": "gpt-fake", "messages": HI}
    async with from_address(proxy, "127.0.0.1") as admin:
        bad = await admin.post("/key/generate", json={"metadata": {"allowed_ips": ["127.0.0.0/33"]}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "metadata.allowed_ips"
        raw = (await admin.post("/key/generate", json={"metadata": {"allowed_ips": ["127.0.0.2"]}})).json()["key"]
    key = {"authorization": f"Bearer {raw}"}
    async with from_address(proxy, "127.0.0.2", **key) as near, from_address(proxy, "127.0.0.1", **key) as far:
        assert (await near.post("/v1/chat/completions", json=body)).status_code == 200
        refused = await far.post("/v1/chat/completions", json=body)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "ip_not_allowed"
        assert (await far.get("/key/info")).status_code == 403  # every route the key authenticates on
        assert (await near.get("/key/info")).status_code == 200
    # the master key is not bound by a virtual key's list
    async with from_address(proxy, "127.0.0.1") as admin:
        assert (await admin.post("/v1/chat/completions", json=body)).status_code == 200
