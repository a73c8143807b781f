"""A request body limit on every FastAPI route, enforced before anything reads or parses the body,
and the checks every admin input gets before a route sees it.

The model endpoints (raw ASGI, dispatched before this middleware) have their own limit,
``general_settings.max_request_size_mb``. Everything else — admin, webhook and dashboard routes —
takes at most ``max_admin_request_size_kb``, and a caller that presents no credential at all (no key
header, no dashboard session, no webhook signature) at most ``max_unauthenticated_request_size_kb``:
a stranger cannot make the proxy hold more than that in memory. A declared ``Content-Length`` over the
limit is refused at once, without reading a byte; a chunked body is read up to the limit and refused
there.

Then, for input that no database column can hold: a NUL byte anywhere in the path, the query or a JSON
string, and JSON that is not strict (``NaN``, ``Infinity``, numbers beyond 64 bits) are refused with a
400 that names the field.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONValue

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


async def _answer(send: Send, err: ProxyError) -> None:
    body = err.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


RAW_BODY_PATHS = frozenset({"/stripe/webhook"})  # signed: the signature is checked over the exact bytes first


def _nul_in_query(query: bytes) -> ProxyError | None:
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return invalid_request(f"'{name[:64]}' contains a NUL byte", param=name[:64], code="nul_byte")
    return invalid_request("the query string contains a NUL byte", code="nul_byte")


def _path_with_nul(data: JSONValue, path: str = "") -> str | None:
    """Where in parsed JSON a string (or a key) holds a NUL byte; None when nowhere."""
    if isinstance(data, str):
        return path or "body" if "\x00" in data else None
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return here
            found = _path_with_nul(value, here)
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = _path_with_nul(value, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def check_json_body(body: bytes) -> ProxyError | None:
    """Strict JSON only (what the database's JSON columns accept), and no NUL byte in any string."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return invalid_request(
            "the body is not valid JSON (NaN, Infinity and numbers beyond 64 bits are not accepted)",
            code="invalid_json",
        )
    if b"\\u0000" in body:
        where = _path_with_nul(data)
        if where is not None:
            return invalid_request(f"'{where}' contains a NUL byte", param=where, code="nul_byte")
    return None


def _json_content(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return b"json" in value.lower()
    return True  # FastAPI reads an untyped body as JSON too


class BodyLimitMiddleware:
    """Pure ASGI: buffers at most ``limit`` bytes of a body, then hands it to the app in one message."""

    def __init__(
        self, app: ASGIApp, *, credentialed_limit: int, anonymous_limit: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.credentialed_limit = credentialed_limit
        self.anonymous_limit = anonymous_limit
        self.path_limits = path_limits or {}  # routes with a smaller limit of their own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        refused = _nul_in_query(scope.get("query_string") or b"")
        raw_path = scope.get("raw_path") or b""
        if refused is None and (b"%00" in raw_path or "\x00" in scope["path"]):
            refused = invalid_request("the path contains a NUL byte", code="nul_byte")
        if refused is not None:
            await _answer(send, refused)
            return
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
        limit = min(limit, self.path_limits.get(scope["path"], limit))
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
        if body and scope["path"] not in RAW_BODY_PATHS and _json_content(headers):
            refused = check_json_body(bytes(body))
            if refused is not None:
                await _answer(send, refused)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            message: Message = await receive()
            return message

        await self.app(scope, replay, send)
