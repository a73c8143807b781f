"""OpenAI-format error bodies -> ProxyError kinds, for OpenAI-compatible clouds and Azure.

Beyond the status code, the body says which failures need a different model rather than a retry:
``context_length_exceeded`` (context-window fallbacks), ``content_filter`` / ``content_policy_violation``
(content-policy fallbacks; Azure's prompt filter answers 400 with ``innererror.code``
``ResponsibleAIPolicyViolation``) and ``insufficient_quota`` (a 429 that waiting does not cure).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.upstream_http import default_error

CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
CONTEXT_MARKERS = ("maximum context length", "context length", "context window", "prompt is too long")
POLICY_CODES = frozenset({"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"})


def _error_object(raw: bytes) -> JSONObject | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def openai_error(status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
    base = default_error(status, raw, headers)
    err = _error_object(raw)
    if err is None or status >= 500:
        return base
    code = err.get("code")
    inner = err.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    message = base.message.lower()
    param = err.get("param") if isinstance(err.get("param"), str) else None
    kind: ErrorKind | None = None
    if code in POLICY_CODES or inner_code in POLICY_CODES:
        kind = ErrorKind.CONTENT_POLICY
    elif code in CONTEXT_CODES or (status == 400 and any(m in message for m in CONTEXT_MARKERS)):
        kind = ErrorKind.CONTEXT_WINDOW_EXCEEDED
    elif code == "insufficient_quota" or err.get("type") == "insufficient_quota":
        kind = ErrorKind.INSUFFICIENT_QUOTA
    if kind is None:
        if isinstance(code, str) and code:
            base.code = code
        base.param = param
        return base
    return ProxyError(
        kind,
        base.message,
        status=status,
        param=param,
        code=str(code or inner_code or kind.name.lower()),
    )
