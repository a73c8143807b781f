"""The one endpoint skeleton every client API runs on, as a raw ASGI app.

Written for speed on purpose: headers are read straight from the ASGI scope, the body is parsed once
with orjson (by the frontend), and responses are sent as bytes with no Response objects in between.
A watcher on ``receive`` notices a client that goes away and cancels the work, which closes the
upstream request. After-hooks run once the response is out (``Gateway.finish``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator

from starlette.types import Receive, Scope, Send

from proxyllm.accounts.auth import key_from_headers
from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.gateway import internal_error
from proxyllm.core.pricing import format_cost
from proxyllm.core.requests import header_tags, timeout_header
from proxyllm.frontends.base import Frontend, Incoming, Services, StreamEncoder
from proxyllm.frontends.batch import run_batch

log = logging.getLogger("proxyllm.http")

JSON = b"application/json"
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ClientGone(Exception):
    """The client disconnected before its response was complete."""


class Watch:
    """Cancels the request's task when the client disconnects before the response is finished."""

    __slots__ = ("disconnected", "finished", "task", "watcher")

    def __init__(self) -> None:
        self.disconnected = False
        self.finished = False
        self.task = asyncio.current_task()
        self.watcher: asyncio.Task[None] | None = None

    def start(self, receive: Receive) -> None:
        self.watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self.finished and self.task is not None:
                    self.disconnected = True
                    self.task.cancel()
                return

    def stop(self) -> None:
        self.finished = True
        if self.watcher is not None and not self.watcher.done():
            self.watcher.cancel()

    def absorb_disconnect(self, ctx: RequestContext | None) -> bool:
        """After a CancelledError: True, with the task uncancelled, when it was the client leaving."""
        self.stop()
        if not self.disconnected:
            return False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        if ctx is not None:
            ctx.outcome = "cancelled"
        return True


async def read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    if declared is not None and declared > limit:
        raise _too_large(limit)
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ProxyError:
    return ProxyError(
        ErrorKind.PAYLOAD_TOO_LARGE,
        f"request body is larger than the limit of {limit // 1024} KiB (general_settings.max_request_size_mb)",
    )


def request_headers(ctx: RequestContext, wanted: dict[bytes, str]) -> None:
    """LiteLLM's request headers: ``x-litellm-timeout`` and ``x-litellm-tags`` (comma-separated)."""
    timeout_value = wanted.get(b"x-litellm-timeout")
    if timeout_value is not None:
        ctx.timeout = timeout_header(timeout_value)
    tags = wanted.get(b"x-litellm-tags")
    if tags is not None:
        ctx.tags = ctx.tags | header_tags(tags)


def response_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-litellm-call-id", ctx.request_id.encode())]
    dep = ctx.deployment
    if dep is not None:
        headers.append((b"x-litellm-model-id", dep.id.encode()))
        headers.append((b"x-litellm-model-group", ctx.model_group.encode()))
    headers.append((b"x-litellm-attempted-retries", str(ctx.retries).encode()))
    headers.append((b"x-litellm-attempted-fallbacks", str(ctx.fallbacks).encode()))
    # Time spent in the proxy itself: everything so far but the waits on upstreams (and retry backoff).
    overhead_ms = (time.perf_counter() - ctx.started - ctx.upstream_wait) * 1000
    headers.append((b"x-litellm-overhead-duration-ms", f"{max(0.0, overhead_ms):.3f}".encode()))
    if ctx.cost is not None:
        headers.append((b"x-litellm-response-cost", format_cost(ctx.cost).encode()))
    for name, value in ctx.response_headers.items():
        headers.append((name.encode(), value.encode()))
    return headers


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], content_type: bytes = JSON
) -> None:
    headers.append((b"content-type", content_type))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, err: ProxyError, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in err.response_headers().items():
        headers.append((name.encode(), value.encode()))
    await send_bytes(send, err.status, body, headers)


class Endpoint:
    """``POST`` endpoint for one client API; an ASGI app mounted as a plain Starlette route."""

    def __init__(self, runtime: Services, frontend: Frontend) -> None:
        self.runtime = runtime
        self.frontend = frontend
        self.wanted = frontend.headers | {b"x-litellm-timeout", b"x-litellm-tags"}
        self.prepares = type(frontend).prepare is not Frontend.prepare  # skip a no-op await per request
        self.typed = type(frontend).content_type is not Frontend.content_type  # an answer that is not JSON
        self.max_body = frontend.max_body
        self.stream_headers = [(b"content-type", frontend.stream_type), *STREAM_HEADERS[1:]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        raw_headers = scope["headers"]
        declared: int | None = None
        wanted: dict[bytes, str] = {}
        for name, value in raw_headers:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else None
            elif name in self.wanted:
                wanted[name] = value.decode("latin-1")
        frontend = self.frontend
        ctx: RequestContext | None = None
        watch = Watch()
        gateway = self.runtime.gateway
        try:
            raw = await read_body(receive, self.max_body or self.runtime.max_body_bytes, declared)
            incoming = Incoming(
                raw=raw,
                headers=wanted,
                api_key=key_from_headers(raw_headers),
                request_id=request_id,
                started=started,
                path=scope["path"],
            )
            ctx = frontend.context(incoming)
            if wanted:
                request_headers(ctx, wanted)
            if frontend.batches and "," in ctx.model:
                await run_batch(gateway, frontend, incoming, ctx, send)
                ctx = None  # each model's call was finished on its own
                return
            if self.prepares:
                await frontend.prepare(ctx)
            watch.start(receive)
            result = await gateway.call(ctx)
            if isinstance(result, bytes):
                watch.stop()
                body, as_events = (await frontend.encode(ctx, result)) if frontend.translates else (result, False)
                if as_events:
                    headers = response_headers(ctx) + self.stream_headers
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                else:
                    content_type = frontend.content_type(ctx) if self.typed else JSON
                    await send_bytes(send, 200, body, response_headers(ctx), content_type)
            else:
                encoder = frontend.stream_encoder(ctx)
                await self._send_stream(send, ctx, result, encoder, watch, self.stream_headers)
        except ProxyError as err:
            watch.stop()
            headers = response_headers(ctx) if ctx else [(b"x-litellm-call-id", request_id.encode())]
            await send_error(send, err, frontend.error_body(err, request_id), headers)
        except ClientGone:
            watch.stop()
        except asyncio.CancelledError:
            if not watch.absorb_disconnect(ctx):
                raise
            log.info("client disconnected from request %s", request_id)
        except Exception:
            watch.stop()
            log.exception("unexpected error in request %s", request_id)
            failure = internal_error(request_id)
            headers = [(b"x-litellm-call-id", request_id.encode())]
            await send_error(send, failure, frontend.error_body(failure, request_id), headers)
        finally:
            watch.stop()
            if ctx is not None and ctx.hooks_ran:
                await gateway.finish(ctx)

    @staticmethod
    async def _send_stream(
        send: Send,
        ctx: RequestContext,
        events: AsyncGenerator[bytes, None],
        encoder: StreamEncoder | None,
        watch: Watch,
        stream_headers: list[tuple[bytes, bytes]],
    ) -> None:
        headers = response_headers(ctx)
        headers.extend(stream_headers)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if encoder is None:  # bytes-through
                async for event in events:
                    await send({"type": "http.response.body", "body": event, "more_body": True})
                tail = b""
            else:
                async for event in events:
                    out = encoder.feed(event)
                    if out:
                        await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
                tail = b"".join(await encoder.finish(ctx))
            watch.stop()
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            await events.aclose()
