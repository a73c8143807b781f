"""Item 1: no route reads an unbounded body; strangers are refused before anything is parsed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, ProxyServer

HUGE = 256 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)


def rss_bytes() -> int:
    """This process's resident memory (the proxy under test runs in a thread of it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send_chunked(port: int, path: str, headers: dict[str, str], total: int) -> tuple[int | None, int]:
    """POST ``total`` bytes chunked on a raw socket until the server answers or closes; (status, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    head += "Content-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sent = 0
    try:
        sock.sendall(head.encode())
        sock.setblocking(False)
        reply = b""
        while sent < total:
            with contextlib.suppress(BlockingIOError):
                reply += sock.recv(65536)
            if reply:
                break
            frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
            try:
                sock.sendall(frame)
            except BlockingIOError:
                continue
            except OSError:
                break
            sent += len(CHUNK)
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while b"\r\n" not in reply:
                more = sock.recv(65536)
                if not more:
                    break
                reply += more
        except OSError:
            pass
    finally:
        sock.close()
    status = int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else None
    return status, sent


@pytest.mark.parametrize("path", ["/stripe/webhook", "/key/generate", "/model/new", "/ui/login", "/user/new"])
async def test_unauthenticated_huge_chunked_body_is_refused_early(shared_proxy: ProxyServer, path: str) -> None:
    before = rss_bytes()
    status, sent = await asyncio.to_thread(send_chunked, shared_proxy.port, path, {}, HUGE)
    grown = rss_bytes() - before
    assert status == 413
    assert sent < 32 * 1024 * 1024, f"{sent} bytes were accepted before the refusal"
    assert grown < 48 * 1024 * 1024, f"RSS grew by {grown // 2**20} MiB"


@pytest.mark.parametrize("path", ["/stripe/webhook", "/key/generate", "/team/new"])
async def test_declared_length_over_the_limit_is_refused_without_reading(shared_proxy: ProxyServer, path: str) -> None:
    """The Content-Length promises 256 MiB and one byte arrives: the answer comes without waiting for more."""
    assert await asyncio.to_thread(_declared_only, shared_proxy.port, path) == 413


def _declared_only(port: int, path: str) -> int | None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {HUGE}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {MASTER_KEY}\r\n\r\n{{".encode()
        )
        reply = sock.recv(65536)
    finally:
        sock.close()
    return int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else None


async def test_authenticated_admin_body_over_admin_limit(shared_proxy: ProxyServer) -> None:
    status, sent = await asyncio.to_thread(
        send_chunked, shared_proxy.port, "/key/generate", {"Authorization": f"Bearer {MASTER_KEY}"}, HUGE
    )
    assert status == 413
    assert sent < 32 * 1024 * 1024


async def test_ordinary_bodies_still_work(shared_proxy: ProxyServer, shared_admin: Any) -> None:
    response = await shared_admin.post("/key/generate", json={"key_alias": "fits", "metadata": {"note": "x" * 70_000}})
    assert response.status_code == 200, response.text
    async with httpx.AsyncClient(base_url=shared_proxy.url, timeout=30) as anonymous:
        response = await anonymous.post("/key/generate", json={"key_alias": "x" * 70_000})
        assert response.status_code == 413  # over the anonymous limit: refused before authentication
        assert response.json()["error"]["code"] == "request_too_large"
        response = await anonymous.post("/key/generate", json={"key_alias": "small"})
        assert response.status_code == 401


async def test_configured_admin_limit(proxy_factory: Any, openai_upstream: Any, ollama_upstream: Any) -> None:
    from tests.conftest import standard_config

    config = standard_config(openai_upstream.api_base, ollama_upstream.url).replace(
        "general_settings:\n", "general_settings:\n  max_admin_request_size_kb: 4\n"
    )
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config)
    async with httpx.AsyncClient(
        base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"}
    ) as client:
        response = await client.post("/key/generate", json={"key_alias": "a", "metadata": {"n": "x" * 5000}})
        assert response.status_code == 413
        response = await client.post("/key/generate", json={"key_alias": "a"})
        assert response.status_code == 200
