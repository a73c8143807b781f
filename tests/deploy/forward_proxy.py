"""An HTTP forward proxy on 127.0.0.1 standing in for tailscaled's: only it knows the tailnet names.

Like tailscaled's ``--outbound-http-proxy-listen``, it takes absolute-form requests
(``GET http://hugo:11434/api/tags HTTP/1.1``) and ``CONNECT hugo:11434`` tunnels, and resolves the
host itself from its own map (``hugo:11434`` -> a fake Ollama on loopback), so the name must reach
it unresolved. Unknown hosts get 502, as tailscaled answers when it cannot dial. Every request is
recorded; forwarded requests carry a ``Via`` header so an upstream can tell it was proxied.

Written on asyncio streams rather than aiohttp's server: a CONNECT tunnel needs the raw socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

VIA = "1.1 tailnet-forward-proxy"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
}


@dataclass(frozen=True)
class Seen:
    method: str
    target: str  # host:port as the client asked for it
    path: str


class ForwardProxy:
    def __init__(self, hosts: dict[str, tuple[str, int]], *, port: int = 0) -> None:
        self.hosts = hosts  # "hugo:11434" -> ("127.0.0.1", 45123)
        self.seen: list[Seen] = []
        self.server: asyncio.Server | None = None
        self.port = port
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers = [tuple(h.split(":", 1)) for h in header_lines if ":" in h]
        if method == "CONNECT":
            self.seen.append(Seen(method, target, ""))
            await self._tunnel(target, reader, writer)
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            await self._reply(writer, 400, "absolute-form http:// request expected")
            return
        authority = f"{parts.hostname}:{parts.port or 80}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self.seen.append(Seen(method, authority, path))
        address = self.hosts.get(authority)
        if address is None:
            await self._reply(writer, 502, f"no route to {authority}")
            return
        length = next((int(v) for k, v in headers if k.strip().lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        try:
            up_reader, up_writer = await asyncio.open_connection(*address)
        except OSError:
            await self._reply(writer, 502, f"cannot dial {authority}")
            return
        kept = [f"{k}:{v}" for k, v in headers if k.strip().lower() not in HOP_BY_HOP]
        out = [f"{method} {path} {version}", *kept, f"Via: {VIA}", "Connection: close", "", ""]
        up_writer.write("\r\n".join(out).encode("latin-1") + body)
        await up_writer.drain()
        try:
            await self._pipe(up_reader, writer)
        finally:
            up_writer.close()

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = self.hosts.get(target)
        if address is None:
            await self._reply(writer, 502, f"no route to {target}")
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*address)
        except OSError:
            await self._reply(writer, 502, f"cannot dial {target}")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            up_writer.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while chunk := await src.read(65536):
                dst.write(chunk)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            if dst.can_write_eof():
                with contextlib.suppress(OSError):
                    dst.write_eof()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, text: str) -> None:
        reason = {400: "Bad Request", 502: "Bad Gateway"}[status]
        body = text.encode()
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
