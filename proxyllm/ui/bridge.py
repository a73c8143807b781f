"""``/ui/api/<path>``: the dashboard's one way to data, the proxy's own admin API called in process.

The browser never holds a key. The bridge takes the key from the session and calls the same ASGI
app (middleware, routes, auth, error handlers — everything an HTTP client would go through) with it
as ``Authorization``, so what the dashboard shows is exactly what the API answers, and a customer's
key sees only what the API lets that key see. Only the paths below are forwarded; any credential or
cookie the browser sent is dropped first.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject

READS = frozenset(
    {
        "/key/info",
        "/key/list",
        "/user/list",
        "/user/info",
        "/team/list",
        "/team/info",
        "/spend/logs",
        "/global/spend",
        "/global/spend/report",
        "/v1/models",
        "/health",
        "/stripe/balance",
        "/stripe/balances",
        "/stripe/transactions",
        "/stripe/meter-events",
        "/stripe/subscription",
        "/stripe/subscriptions",
        "/stripe/auto_recharge",
        "/stripe/grants",
    }
)
WRITES = frozenset(
    {
        "/key/generate",
        "/key/update",
        "/key/block",
        "/key/unblock",
        "/key/regenerate",
        "/key/delete",
        "/user/new",
        "/user/update",
        "/user/delete",
        "/team/new",
        "/team/update",
        "/team/delete",
        "/team/member_add",
        "/team/member_delete",
        "/stripe/topup",
        "/stripe/balance/adjust",
        "/stripe/portal",
        "/stripe/auto_recharge",
        "/stripe/auto_recharge/card",
    }
)
ALLOWED = {"GET": READS, "POST": WRITES}
MAX_BODY = 256 * 1024
# Request headers never forwarded: credentials (the session's key replaces them), the browser's
# cookies and CSRF token, and framing/encoding the bridge sets itself.
DROPPED = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"api-key",
        b"cookie",
        b"x-csrf-token",
        b"content-length",
        b"content-type",
        b"transfer-encoding",
        b"accept-encoding",
        b"connection",
    }
)
PASSED_BACK = frozenset({b"content-type", b"retry-after", b"x-litellm-call-id"})


def target_of(method: str, path: str) -> str:
    """The API path a bridge call may reach, or a 404 naming what the dashboard can do."""
    target = "/" + path
    if target not in ALLOWED.get(method, frozenset()):
        raise ProxyError(
            ErrorKind.NOT_FOUND,
            f"{method} {target} is not available through the dashboard",
            code="not_in_dashboard",
        )
    return target


async def read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ProxyError(ErrorKind.PAYLOAD_TOO_LARGE, f"request body over {MAX_BODY // 1024} KiB")
    return bytes(body)


async def forward(request: Request, target: str, key: str) -> Response:
    """Call ``target`` on this app as ``key`` and answer with the API's status and body."""
    body = await read_body(request) if request.method == "POST" else b""
    outer = request.scope
    headers = [(name, value) for name, value in outer["headers"] if name not in DROPPED]
    headers.append((b"authorization", b"Bearer " + key.encode("latin-1")))
    if request.method == "POST":
        headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(body)).encode()))
    scope: Scope = {
        "type": "http",
        "asgi": outer.get("asgi", {"version": "3.0"}),
        "http_version": outer.get("http_version", "1.1"),
        "method": request.method,
        "scheme": outer.get("scheme", "http"),
        "server": outer.get("server"),
        "client": outer.get("client"),
        "root_path": "",
        "path": target,
        "raw_path": target.encode(),
        "query_string": outer.get("query_string", b""),
        "headers": headers,
    }
    if "state" in outer:
        scope["state"] = dict(outer["state"])
    sent = False

    async def receive() -> JSONObject:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status: int | None = None
    answer_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def send(message: JSONObject) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            answer_headers.extend((n.lower(), v) for n, v in message.get("headers", ()) if n.lower() in PASSED_BACK)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await request.app(scope, receive, send)
    except Exception:
        # The app's own handler has answered (and logged) already; Starlette re-raises after that.
        if status is None:
            raise
    if status is None:
        raise ProxyError(ErrorKind.INTERNAL, "the API gave no answer")
    response = Response(b"".join(chunks), status_code=status)
    for name, value in answer_headers:
        response.raw_headers.append((name, value))
    response.headers["cache-control"] = "no-store"
    return response
