"""Anthropic error bodies <-> ProxyError kinds.

Anthropic answers ``{"type": "error", "error": {"type": "...", "message": "..."}}``. ``overloaded_error``
(HTTP 529) is a retryable UNAVAILABLE, so the router retries it and then falls back.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from proxyllm.core.errors import ErrorKind, ProxyError, error_from_status, upstream_message
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.upstream_http import retry_after_seconds

KINDS = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "billing_error": ErrorKind.INSUFFICIENT_QUOTA,
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.PAYLOAD_TOO_LARGE,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "overloaded_error": ErrorKind.UNAVAILABLE,
    "api_error": ErrorKind.UPSTREAM,
    "timeout_error": ErrorKind.TIMEOUT,
}
STATUSES = {"overloaded_error": 529, "api_error": 500, "timeout_error": 504}
CONTEXT_MARKERS = ("prompt is too long", "context limit", "context window", "too many tokens", "maximum context")

# ProxyError kind -> Anthropic error type, for answering Anthropic-format clients.
ANTHROPIC_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.CONTEXT_WINDOW_EXCEEDED: "invalid_request_error",
    ErrorKind.CONTENT_POLICY: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.MODEL_ACCESS: "authentication_error",  # 401, as LiteLLM answers a model the key may not use
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.INSUFFICIENT_QUOTA: "billing_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.PAYLOAD_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.UNAVAILABLE: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout_error",
}


def error_from_body(data: JSONValue, *, status: int | None, retry_after: float | None = None) -> ProxyError:
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return error_from_status(status or 500, "Anthropic returned an error without details", retry_after=retry_after)
    kind_name = err.get("type")
    message = str(err.get("message") or kind_name or "unknown error")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        return error_from_status(status or 500, message, retry_after=retry_after)
    if kind is ErrorKind.INVALID_REQUEST and any(m in message.lower() for m in CONTEXT_MARKERS):
        kind = ErrorKind.CONTEXT_WINDOW_EXCEEDED
    code = "context_length_exceeded" if kind is ErrorKind.CONTEXT_WINDOW_EXCEEDED else kind_name
    status = status or STATUSES.get(str(kind_name)) or kind.status
    return ProxyError(kind, message, status=status, code=code, retry_after=retry_after)


def map_error(status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
    retry_after = retry_after_seconds(headers)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error_from_status(status, upstream_message(raw), retry_after=retry_after)
    return error_from_body(data, status=status, retry_after=retry_after)


def anthropic_error_body(err: ProxyError, request_id: str | None = None) -> bytes:
    """A ProxyError in Anthropic's shape, for clients of ``/v1/messages``."""
    body: JSONObject = {
        "type": "error",
        "error": {"type": ANTHROPIC_TYPES.get(err.kind, "api_error"), "message": err.message},
    }
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)
