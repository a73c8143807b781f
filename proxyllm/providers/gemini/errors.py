"""Gemini error bodies -> ProxyError kinds.

Google answers ``{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...]}}``.
A bad key is a 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` (made a 401 here); a quota error
names its wait in a ``google.rpc.RetryInfo`` detail (``"retryDelay": "17s"``), used as Retry-After.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from proxyllm.core.errors import ErrorKind, ProxyError, error_from_status, upstream_message
from proxyllm.core.jsontypes import JSONValue
from proxyllm.core.upstream_http import retry_after_seconds

STATUS_KINDS = {
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "UNAVAILABLE": ErrorKind.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "INTERNAL": ErrorKind.UPSTREAM,
}
CONTEXT_MARKERS = ("exceeds the maximum number of tokens", "input token count", "context window")


def _retry_delay(details: JSONValue) -> float | None:
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay") or "").removesuffix("s")
            try:
                return max(0.0, float(delay))
            except ValueError:
                return None
    return None


def _reasons(details: JSONValue) -> set[str]:
    return {str(d.get("reason")) for d in details if isinstance(d, dict)} if isinstance(details, list) else set()


def error_from_body(data: JSONValue, *, status: int | None, retry_after: float | None = None) -> ProxyError:
    err = data.get("error") if isinstance(data, dict) else None
    if not isinstance(err, dict):
        return error_from_status(status or 500, "Gemini returned an error without details", retry_after=retry_after)
    code = err.get("code")
    status = status or (code if isinstance(code, int) else 500)
    message = str(err.get("message") or err.get("status") or "unknown error")
    grpc = err.get("status")
    details = err.get("details")
    retry_after = _retry_delay(details) if retry_after is None else retry_after
    kind = STATUS_KINDS.get(grpc) if isinstance(grpc, str) else None
    if "API_KEY_INVALID" in _reasons(details) or "api key not valid" in message.lower():
        return ProxyError(ErrorKind.AUTHENTICATION, message, status=401, code="invalid_api_key")
    if status == 400 and any(m in message.lower() for m in CONTEXT_MARKERS):
        return ProxyError(ErrorKind.CONTEXT_WINDOW_EXCEEDED, message, status=400, code="context_length_exceeded")
    if kind is None:
        return error_from_status(status, message, retry_after=retry_after)
    return ProxyError(kind, message, status=status, code=str(grpc).lower(), retry_after=retry_after)


def map_error(status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
    retry_after = retry_after_seconds(headers)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error_from_status(status, upstream_message(raw), retry_after=retry_after)
    if isinstance(data, list) and data:  # the JSON-array framing wraps errors in a list
        data = data[0]
    return error_from_body(data, status=status, retry_after=retry_after)
