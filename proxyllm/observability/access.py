"""One request log line for every HTTP response, whatever answered it.

Model calls that reach the gateway are logged by ``ObservabilityHook`` with all their facts (key, model,
tokens, cost). Everything else — a body that is not JSON, a 413, an unknown path's 404, an IP
allowlist 403, an admin route, a 500 — is logged here, from what went over the wire: method, path,
status, latency, and for errors the message of the error body. ``RequestLog`` is a pure ASGI wrapper:

- around the whole app it sees every response; a gateway call marks itself logged (through a context
  variable that ``log_request`` reads), so a model call is logged once, with its gateway facts plus
  this request's method and path;
- when the ``proxyllm.requests`` logger is off it does nothing at all: the app is called as it is.

Error messages pass through ``mask_secrets`` first: keys, bearer tokens, passwords in URLs and
``name=value`` secrets never reach a log line.
"""

from __future__ import annotations

import logging
import time
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxyllm.core.errors import ErrorKind
from proxyllm.observability.logs import CURRENT, Exchange, log, log_http, mask_secrets

CALL_ID = b"x-litellm-call-id"
MAX_ERROR_BODY = 64 * 1024


def _kinds() -> dict[tuple[int, str], str]:
    found: dict[tuple[int, str], str] = {}
    for kind in ErrorKind:
        found.setdefault((kind.status, kind.openai_type), kind.value[0])
    return found


KINDS = _kinds()


def error_of(status: int, body: bytes) -> tuple[str, str | None]:
    """(kind, message) from an error response's body: the OpenAI or Anthropic shape, or plain text."""
    message: str | None = None
    kind: str | None = None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        message = text or None
    else:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            raw_message = error.get("message")
            message = raw_message if isinstance(raw_message, str) else None
            raw_type = error.get("type")
            if isinstance(raw_type, str):
                kind = KINDS.get((status, raw_type)) or raw_type
        elif isinstance(data, dict) and isinstance(data.get("detail"), str):
            message = data["detail"]
    if kind is None:
        kind = "internal" if status >= 500 else "error"
    return kind, mask_secrets(message) if message else None


class RequestLog:
    """ASGI wrapper writing the request line for responses no gateway call logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope["method"], scope["path"])
        token = CURRENT.set(exchange)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = status = message["status"]
                headers = message.get("headers") or ()
                for name, value in headers:
                    if name == CALL_ID:
                        exchange.request_id = value.decode("latin-1")
                        break
                else:
                    exchange.request_id = request_id = str(uuid.uuid4())
                    message = {**message, "headers": [*headers, (CALL_ID, request_id.encode())]}
                if status >= 400:
                    exchange.body = []
            elif (
                exchange.body is not None
                and message["type"] == "http.response.body"
                and sum(map(len, exchange.body)) < MAX_ERROR_BODY
            ):
                exchange.body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except BaseException as exc:
            if not exchange.logged and exchange.status == 0 and isinstance(exc, Exception):
                exchange.status = 500
                self.write(exchange, ("internal", f"unhandled {type(exc).__name__}"))
            raise
        finally:
            CURRENT.reset(token)
        if not exchange.logged and exchange.status:
            body = exchange.body
            self.write(
                exchange, error_of(exchange.status, b"".join(body)[:MAX_ERROR_BODY]) if body is not None else None
            )

    @staticmethod
    def write(exchange: Exchange, error: tuple[str, str | None] | None) -> None:
        exchange.logged = True
        status = exchange.status
        log_http(
            {
                "request_id": exchange.request_id,
                "method": exchange.method,
                "path": exchange.path,
                "status": status,
                "outcome": "error" if status >= 400 else "success",
                "error": error[0] if error else None,
                "error_message": error[1] if error else None,
                "latency_ms": round((time.perf_counter() - exchange.started) * 1000, 3),
            }
        )
