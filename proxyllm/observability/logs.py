"""One log line per request, as JSON or plain text, and the process's log format.

The request line goes to the ``proxyllm.requests`` logger at INFO: request id, method and path, key
alias (never the key, nor its hash), user, team, model, model group, deployment, status, latency, time
to first token, tokens, cost, cache hit, retries, and for errors their kind and message (secrets
masked). Every HTTP response gets one: model calls from the gateway's hook, everything else from
``observability/access.py``. Nothing is built when that logger is off (``LOG_LEVEL=warning``, or
``logging.getLogger("proxyllm.requests").setLevel(logging.WARNING)``), and the text or JSON is only
rendered by the handler that writes it.

``litellm_settings.json_logs: true`` (or ``JSON_LOGS=true``, LiteLLM's variable) makes every log line of
the process one JSON object; otherwise lines are plain text.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.masking import MASKING_FILTER
from proxyllm.core.pricing import format_cost

log = logging.getLogger("proxyllm.requests")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
MAX_MESSAGE = 500
_NAME = r"[\w-]*(?:key|token|secret|password|passwd|credential)s?[\w-]*"
_SECRETS = (
    # provider and proxy keys: sk-..., sk-ant-..., pk_live_..., rk_test_..., whsec_...
    (re.compile(r"\b((?:sk|pk|rk)[-_](?:[a-z]+[-_])?|whsec_)[A-Za-z0-9_\-]{6,}"), r"\1****"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}"), r"\1 ****"),
    (re.compile(r"(?i)(://[^/\s:@]+:)[^@\s/]+@"), r"\1****@"),  # passwords in URLs
    # name=value, "name": "value" and identifier-like name: value, for secret-looking names
    (re.compile(rf"(?i)\b({_NAME})(\s*=\s*)['\"]?[^\s,;'\"&}}]+['\"]?"), r"\1\2****"),
    (re.compile(rf"(?i)(\"?\b{_NAME}\"?\s*:\s*)(['\"])[^'\"]*\2"), r"\1\2****\2"),
    (re.compile(rf"(?i)\b([\w]*[_-]{_NAME}|{_NAME}[_-][\w-]*)(\s*:\s*)['\"]?[^\s,;'\"&}}]+['\"]?"), r"\1\2****"),
)


def mask_secrets(text: str) -> str:
    """The text with anything that looks like a secret replaced by ``****``, at most 500 characters."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


class Exchange:
    """One HTTP request/response as seen on the wire (by ``access.RequestLog``); ``logged`` once its line
    was written, so that a model call logged by the gateway is not logged again."""

    __slots__ = ("body", "logged", "method", "path", "request_id", "started", "status")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        self.started = time.perf_counter()
        self.status = 0
        self.request_id: str | None = None
        self.body: list[bytes] | None = None
        self.logged = False


CURRENT: ContextVar[Exchange | None] = ContextVar("proxyllm_request_exchange", default=None)


def request_fields(ctx: RequestContext) -> JSONObject:
    principal = ctx.principal
    dep = ctx.deployment
    usage = ctx.usage
    error = ctx.error
    first = ctx.first_chunk_at
    status = 499 if ctx.outcome == "cancelled" else error.status if error is not None else 200
    exchange = CURRENT.get()
    return {
        "request_id": ctx.request_id,
        "method": exchange.method if exchange is not None else "POST",
        "path": exchange.path if exchange is not None else None,
        "key_alias": principal.key_alias if principal is not None else None,
        "user_id": principal.user_id if principal is not None else None,
        "team_id": principal.team_id if principal is not None else None,
        "call_type": ctx.operation.value,
        "model": ctx.model,
        "model_group": ctx.model_group,
        "deployment": dep.id if dep is not None else None,
        "status": status,
        "outcome": ctx.outcome,
        "error": error.kind.value[0] if error is not None else None,
        "error_message": mask_secrets(error.message) if error is not None else None,
        "latency_ms": round((time.perf_counter() - ctx.started) * 1000, 3),
        "ttft_ms": round((first - ctx.started) * 1000, 3) if first is not None else None,
        "prompt_tokens": usage.prompt_tokens if usage is not None else 0,
        "completion_tokens": usage.completion_tokens if usage is not None else 0,
        "cost": format_cost(ctx.cost) if ctx.cost is not None else None,
        "cache_hit": ctx.cache_hit,
        "stream": ctx.stream,
        "retries": ctx.retries,
        "fallbacks": ctx.fallbacks,
    }


class RequestLine:
    """The request's fields; rendered as plain text only if a plain handler writes the record."""

    __slots__ = ("fields",)

    def __init__(self, fields: JSONObject) -> None:
        self.fields = fields

    def __str__(self) -> str:
        f = self.fields
        text = (
            f"request {f['request_id']} {f['status']} {f['call_type']} model={f['model_group']}"
            f" key={f['key_alias'] or '-'} deployment={f['deployment'] or '-'} latency={f['latency_ms']}ms"
            f" tokens={f['prompt_tokens']}+{f['completion_tokens']} cost={f['cost'] or '0'}"
        )
        if f["ttft_ms"] is not None:
            text += f" ttft={f['ttft_ms']}ms"
        if f["cache_hit"]:
            text += " cache_hit"
        return text + error_text(f)


class HttpLine(RequestLine):
    """A response no gateway call produced (admin routes, 404s, bodies refused before the gateway)."""

    __slots__ = ()

    def __str__(self) -> str:
        f = self.fields
        text = f"request {f['request_id']} {f['status']} {f['method']} {f['path']} latency={f['latency_ms']}ms"
        return text + error_text(f)


def error_text(f: JSONObject) -> str:
    if not f.get("error"):
        return ""
    text = f" error={f['error']}"
    if f.get("error_message"):
        text += " message=" + orjson.dumps(f["error_message"]).decode()
    return text


def log_request(ctx: RequestContext) -> None:
    if log.isEnabledFor(logging.INFO):
        exchange = CURRENT.get()
        if exchange is not None:
            exchange.logged = True
        _write(RequestLine(request_fields(ctx)))


def log_http(fields: JSONObject) -> None:
    _write(HttpLine(fields))


def _write(line: RequestLine) -> None:
    # makeRecord + handle: what log.info does, without looking up the caller's frame (a few µs).
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, line, (), None)
    record.request = line.fields
    log.handle(record)


class JsonFormatter(logging.Formatter):
    """Every record as one JSON object on one line; a request record's fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        data: JSONObject = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "request", None)
        if isinstance(fields, dict):
            data["message"] = "request"
            data.update(fields)
        else:
            data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def json_logs_wanted(setting: bool, env: Mapping[str, str] = os.environ) -> bool:
    return setting or env.get("JSON_LOGS", "").lower() in ("1", "true", "yes")


def configure_logging(*, json_logs: bool, level: str | None = None) -> None:
    """Set the format of the root logger's handlers (adding one on stderr when there is none); with JSON,
    uvicorn's own handlers too, so that every line of the process is JSON."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
        root.setLevel((level or os.environ.get("LOG_LEVEL") or "info").upper())
    formatter = JsonFormatter() if json_logs else logging.Formatter(PLAIN_FORMAT)
    handlers = list(root.handlers)
    if json_logs:
        handlers += [h for name in UVICORN_LOGGERS for h in logging.getLogger(name).handlers]
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(MASKING_FILTER)  # credentials in URLs never reach a log line
