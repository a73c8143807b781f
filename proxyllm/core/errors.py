"""The one error type of the proxy.

Every failure — bad input, auth, an upstream's error, a timeout — is a ``ProxyError`` with a machine
readable ``kind``. The kind decides the HTTP status, the OpenAI error ``type`` and whether the router
may retry it; the HTTP layer turns it into ``{"error": {...}}`` in one place.
"""

from __future__ import annotations

from enum import Enum

import orjson

from proxyllm.core.jsontypes import JSONObject, JSONValue


class ErrorKind(Enum):
    # (name, HTTP status, OpenAI error type, retryable by the router). The name keeps kinds that
    # share a status and type distinct members rather than enum aliases.
    INVALID_REQUEST = ("invalid_request", 400, "invalid_request_error", False)
    CONTEXT_WINDOW_EXCEEDED = ("context_window_exceeded", 400, "invalid_request_error", False)
    CONTENT_POLICY = ("content_policy", 400, "invalid_request_error", False)
    BUDGET_EXCEEDED = ("budget_exceeded", 400, "budget_exceeded", False)
    AUTHENTICATION = ("authentication", 401, "authentication_error", False)
    MODEL_ACCESS = ("model_access", 401, "key_model_access_denied", False)  # LiteLLM's status and type
    INSUFFICIENT_QUOTA = ("insufficient_quota", 402, "insufficient_quota", False)
    PERMISSION = ("permission", 403, "permission_error", False)
    NOT_FOUND = ("not_found", 404, "not_found_error", False)
    PAYLOAD_TOO_LARGE = ("payload_too_large", 413, "invalid_request_error", False)
    RATE_LIMIT = ("rate_limit", 429, "rate_limit_error", True)
    NOT_IMPLEMENTED = ("not_implemented", 501, "not_implemented_error", False)
    UPSTREAM = ("upstream", 502, "api_error", True)  # upstream 5xx (status carried on the error)
    UPSTREAM_CONNECT = ("upstream_connect", 502, "api_connection_error", True)
    TIMEOUT = ("timeout", 504, "timeout", True)
    UNAVAILABLE = ("unavailable", 503, "service_unavailable", True)
    INTERNAL = ("internal", 500, "internal_server_error", False)

    @property
    def status(self) -> int:
        return self.value[1]

    @property
    def openai_type(self) -> str:
        return self.value[2]

    @property
    def retryable(self) -> bool:
        return self.value[3]


class ProxyError(Exception):
    """An error with everything needed to answer the client and to decide on retries."""

    __slots__ = ("code", "details", "error_type", "headers", "kind", "message", "param", "retry_after", "status")

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        error_type: str | None = None,
        details: JSONObject | None = None,
    ) -> None:
        super().__init__(message)
        self.details = details  # more fields of the error object (e.g. each failed attempt), machine-readable
        self.error_type = error_type  # the body's "type" when it is not the kind's (LiteLLM's finer types)
        self.kind: ErrorKind = kind
        self.message: str = message
        self.param = param
        self.code = code
        self.status: int = status or kind.status
        self.retry_after: float | None = retry_after
        self.headers = headers

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def body(self) -> bytes:
        error: JSONObject = {
            "message": self.message,
            "type": self.error_type or self.kind.openai_type,
            "param": self.param,
            "code": self.code if self.code is not None else str(self.status),
        }
        if self.details:
            error.update(self.details)
        return orjson.dumps({"error": error})

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers) if self.headers else {}
        if self.retry_after is not None:
            headers.setdefault("retry-after", str(max(1, round(self.retry_after))))
        return headers

    def __repr__(self) -> str:
        return f"ProxyError({self.kind.name}, {self.status}, {self.message!r})"


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> ProxyError:
    return ProxyError(ErrorKind.INVALID_REQUEST, message, param=param, code=code)


def error_from_status(status: int, message: str, *, retry_after: float | None = None) -> ProxyError:
    """Classify an upstream HTTP failure; its 4xx status and message pass through to the client."""
    if status == 429:
        kind = ErrorKind.RATE_LIMIT
    elif status == 401:
        kind = ErrorKind.AUTHENTICATION
    elif status == 403:
        kind = ErrorKind.PERMISSION
    elif status == 404:
        kind = ErrorKind.NOT_FOUND
    elif status in (408, 504):
        kind = ErrorKind.TIMEOUT
    elif status == 503 or status == 529:
        kind = ErrorKind.UNAVAILABLE
    elif status >= 500:
        kind = ErrorKind.UPSTREAM
    else:
        kind = ErrorKind.INVALID_REQUEST
    return ProxyError(kind, message, status=status, retry_after=retry_after)


def upstream_message(raw: bytes, limit: int = 2000) -> str:
    """The human message inside an upstream error body, whatever its shape."""
    try:
        data: JSONValue = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return text[:limit] or "upstream returned an empty error body"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("error") or err.get("detail")
            if isinstance(msg, str):
                return msg[:limit]
        elif isinstance(err, str):
            return err[:limit]
        detail = data.get("detail") or data.get("message")
        if isinstance(detail, str):
            return detail[:limit]
    return raw.decode("utf-8", "replace")[:limit]


class StartupError(Exception):
    """The proxy cannot start with this configuration."""
