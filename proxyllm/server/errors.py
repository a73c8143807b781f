"""Every error the app can produce, in the OpenAI shape ``{"error": {...}}`` — never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from proxyllm.core.errors import ErrorKind, ProxyError

log = logging.getLogger("proxyllm.http")

STATUS_KINDS = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    413: ErrorKind.PAYLOAD_TOO_LARGE,
    429: ErrorKind.RATE_LIMIT,
    503: ErrorKind.UNAVAILABLE,
}


def error_response(err: ProxyError) -> Response:
    return Response(err.body(), status_code=err.status, media_type="application/json", headers=err.response_headers())


async def _proxy_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProxyError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = STATUS_KINDS.get(exc.status_code, ErrorKind.INVALID_REQUEST)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(ProxyError(kind, message, status=exc.status_code))


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
    where = f"'{field}': " if field else ""
    return error_response(ProxyError(ErrorKind.INVALID_REQUEST, f"{where}{first.get('msg')}", param=field))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ProxyError(ErrorKind.INTERNAL, "internal error in the proxy"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProxyError, _proxy_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
