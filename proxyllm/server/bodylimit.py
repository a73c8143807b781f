"""A request body limit on every FastAPI route, enforced before anything reads or parses the body.

The model endpoints (raw ASGI, dispatched before this middleware) have their own limit,
``general_settings.max_request_size_mb``. Everything else — admin, webhook and dashboard routes —
takes at most ``max_admin_request_size_kb``, and a caller that presents no credential at all (no key
header, no dashboard session, no webhook signature) at most ``max_unauthenticated_request_size_kb``:
a stranger cannot make the proxy hold more than that in memory. A declared ``Content-Length`` over the
limit is refused at once, without reading a byte; a chunked body is read up to the limit and refused
there.
"""

from __future__ import annotations

from typing import Any

from proxyllm.errors import ErrorKind, ProxyError

CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"api-key", b"stripe-signature"})
SESSION_COOKIE = b"proxyllm_session="


def _credentialed(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name in CREDENTIAL_HEADERS and value.strip():
            return True
        if name == b"cookie" and SESSION_COOKIE in value:
            return True
    return False


def too_large(limit: int) -> ProxyError:
    return ProxyError(
        ErrorKind.PAYLOAD_TOO_LARGE, f"request body too large: at most {limit} bytes here", code="request_too_large"
    )


async def _answer(send: Any, err: ProxyError) -> None:
    body = err.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Pure ASGI: buffers at most ``limit`` bytes of a body, then hands it to the app in one message."""

    def __init__(self, app: Any, *, credentialed_limit: int, anonymous_limit: int) -> None:
        self.app = app
        self.credentialed_limit = credentialed_limit
        self.anonymous_limit = anonymous_limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        declared: int | None = None
        chunked = False
        for name, value in headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _answer(send, ProxyError(ErrorKind.INVALID_REQUEST, "invalid Content-Length header"))
                    return
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and not declared:
            await self.app(scope, receive, send)
            return
        limit = self.credentialed_limit if _credentialed(headers) else self.anonymous_limit
        if declared is not None and declared > limit:
            await _answer(send, too_large(limit))
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _answer(send, too_large(limit))
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            message: dict[str, Any] = await receive()
            return message

        await self.app(scope, replay, send)
