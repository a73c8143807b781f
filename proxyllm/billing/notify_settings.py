"""Notifications' settings from the environment, and the event types they name.

``PROXYLLM_WEBHOOK_URLS`` (comma-separated), ``PROXYLLM_WEBHOOK_SECRET``, ``PROXYLLM_NOTIFICATIONS_OFF``
(comma-separated event types not to send), ``PROXYLLM_WEBHOOK_RETRY_BASE`` (seconds, 5),
``PROXYLLM_WEBHOOK_MAX_ATTEMPTS`` (12); email when ``PROXYLLM_SMTP_HOST`` is set (``_PORT`` 587,
``_USERNAME``, ``_PASSWORD``, ``_FROM``, ``_TLS`` starttls | ssl | none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

BALANCE_LOW = "balance.low"
BALANCE_ZERO = "balance.zero"
TOPUP_CREDITED = "topup.credited"
RECHARGE_SUCCEEDED = "auto_recharge.succeeded"
RECHARGE_FAILED = "auto_recharge.failed"
BUDGET_REACHED = "budget.reached"
SUBSCRIPTION_CHANGED = "subscription.updated"
EVENT_TYPES = (
    BALANCE_LOW,
    BALANCE_ZERO,
    TOPUP_CREDITED,
    RECHARGE_SUCCEEDED,
    RECHARGE_FAILED,
    BUDGET_REACHED,
    SUBSCRIPTION_CHANGED,
)


class NotifyConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    tls: str  # starttls | ssl | none


@dataclass(frozen=True, slots=True)
class NotifySettings:
    urls: tuple[str, ...]
    secret: str | None
    off: frozenset[str]
    retry_base: float = 5.0
    max_attempts: int = 12
    smtp: Smtp | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.urls) or self.smtp is not None


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise NotifyConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise NotifyConfigError(f"{name} must be between {low:g} and {high:g}")
    return value


def notify_settings(env: Mapping[str, str]) -> NotifySettings:
    urls = tuple(u.strip() for u in (env.get("PROXYLLM_WEBHOOK_URLS") or "").split(",") if u.strip())
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
            raise NotifyConfigError(f"PROXYLLM_WEBHOOK_URLS: {url[:80]!r} is not an http(s) URL")
    secret = env.get("PROXYLLM_WEBHOOK_SECRET") or None
    if urls and not secret:
        raise NotifyConfigError("PROXYLLM_WEBHOOK_SECRET is required with PROXYLLM_WEBHOOK_URLS (events are signed)")
    off = frozenset(t.strip() for t in (env.get("PROXYLLM_NOTIFICATIONS_OFF") or "").split(",") if t.strip())
    unknown = off - set(EVENT_TYPES)
    if unknown:
        raise NotifyConfigError(
            f"PROXYLLM_NOTIFICATIONS_OFF names unknown event types {sorted(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    smtp = None
    host = env.get("PROXYLLM_SMTP_HOST")
    if host:
        tls = (env.get("PROXYLLM_SMTP_TLS") or "starttls").lower()
        if tls not in ("starttls", "ssl", "none"):
            raise NotifyConfigError("PROXYLLM_SMTP_TLS must be starttls, ssl or none")
        sender = env.get("PROXYLLM_SMTP_FROM")
        if not sender:
            raise NotifyConfigError("PROXYLLM_SMTP_FROM is required with PROXYLLM_SMTP_HOST")
        smtp = Smtp(
            host=host,
            port=int(_number(env, "PROXYLLM_SMTP_PORT", 587, 1, 65535)),
            username=env.get("PROXYLLM_SMTP_USERNAME") or None,
            password=env.get("PROXYLLM_SMTP_PASSWORD") or None,
            sender=sender,
            tls=tls,
        )
    return NotifySettings(
        urls=urls,
        secret=secret,
        off=off,
        retry_base=_number(env, "PROXYLLM_WEBHOOK_RETRY_BASE", 5.0, 0.01, 3600),
        max_attempts=int(_number(env, "PROXYLLM_WEBHOOK_MAX_ATTEMPTS", 12, 1, 100)),
        smtp=smtp,
    )
