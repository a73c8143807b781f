"""Notifications: signed outbound webhooks (and optional email) from a durable outbox.

Events are written to the ``notifications`` table in the same transaction as what caused them (a
settlement, a credited payment, a subscription change), one row per target. ``NotificationSender``
delivers them in the background: a webhook is an HTTP POST of the event's JSON with

    Proxyllm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with PROXYLLM_WEBHOOK_SECRET>
    Proxyllm-Event-Id: <event id>

(the scheme of Stripe's own webhooks, so receivers verify the same way). A 2xx answer delivers the
row; anything else is retried with exponential backoff up to ``max_attempts``, then the row is marked
failed with the reason. Event ids are derived from what the event is about, so an event raised twice
(a retried batch, two replicas) is queued and delivered once; receivers can dedupe on the id too.

Environment: ``PROXYLLM_WEBHOOK_URLS`` (comma-separated), ``PROXYLLM_WEBHOOK_SECRET``,
``PROXYLLM_NOTIFICATIONS_OFF`` (comma-separated event types not to send), ``PROXYLLM_WEBHOOK_RETRY_BASE``
(seconds, 5), ``PROXYLLM_WEBHOOK_MAX_ATTEMPTS`` (12); email to the account's user when
``PROXYLLM_SMTP_HOST`` is set (``_PORT`` 587, ``_USERNAME``, ``_PASSWORD``, ``_FROM``, ``_TLS``
starttls | ssl | none).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import smtplib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from proxyllm.core.background import cancel
from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind
from proxyllm.core.hooks import Hook
from proxyllm.db.database import Database
from proxyllm.db.tables import User
from proxyllm.db.tables_billing import Notification

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from proxyllm.accounts.writer import SpendWriter

log = logging.getLogger("proxyllm.notify")

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
SUBJECTS = {
    BALANCE_LOW: "Your balance is low",
    BALANCE_ZERO: "Your balance is used up: requests are refused until you top up",
    TOPUP_CREDITED: "Your top-up was credited",
    RECHARGE_SUCCEEDED: "Your balance was recharged automatically",
    RECHARGE_FAILED: "Automatic recharge failed and was turned off",
    BUDGET_REACHED: "A budget was reached",
    SUBSCRIPTION_CHANGED: "Your subscription changed",
}
LEASE = timedelta(seconds=60)
BATCH = 50
SEND_TIMEOUT = 10.0
MAX_BACKOFF = 3600.0
SIGNATURE_HEADER = "Proxyllm-Signature"


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


def event_id(kind: str, about: str) -> str:
    """A stable id from what the event is about: raised twice, it is still one event."""
    return "evt_" + hashlib.sha256(f"{kind}\x00{about}".encode()).hexdigest()[:32]


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _json_default(value: Any) -> Any:
    return str(value)  # Decimal amounts as exact strings


class Notifier:
    """Queues events (in the caller's transaction or through the spend writer) and delivers them."""

    def __init__(self, settings: NotifySettings, db: Database, *, writer: SpendWriter | None = None) -> None:
        self.settings = settings
        self.db = db
        self.writer = writer
        self.sender = NotificationSender(self)

    def wanted(self, kind: str) -> bool:
        return self.settings.enabled and kind not in self.settings.off

    def rows(
        self, kind: str, about: str, account: tuple[str, str] | None, data: dict[str, Any], email: str | None
    ) -> list[dict[str, Any]]:
        ident = event_id(kind, about)
        body = {
            "id": ident,
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "account": None if account is None else {"type": account[0], "id": account[1]},
            "data": data,
        }
        payload = orjson.dumps(body, default=_json_default).decode()
        targets = list(self.settings.urls)
        if email and self.settings.smtp is not None:
            targets.append(f"mailto:{email}")
        return [
            {
                "event_id": ident,
                "target": target,
                "type": kind,
                "account_type": None if account is None else account[0],
                "account_id": None if account is None else account[1],
                "payload": payload,
                "status": "pending",
                "attempts": 0,
            }
            for target in targets
        ]

    async def emit(
        self,
        session: AsyncSession,
        kind: str,
        *,
        about: str,
        account: tuple[str, str] | None,
        data: dict[str, Any],
    ) -> None:
        """Queue an event in the caller's transaction (it commits, or not, with its cause)."""
        if not self.wanted(kind):
            return
        email = None
        if self.settings.smtp is not None and account is not None and account[0] == "user":
            user = await session.get(User, account[1])
            email = user.user_email if user is not None else None
        rows = self.rows(kind, about, account, data, email)
        if rows:
            dialect = sqlite if self.db.sqlite else postgresql
            stmt = dialect.insert(Notification).on_conflict_do_nothing(index_elements=["event_id", "target"])
            await session.execute(stmt, rows)

    def emit_later(self, kind: str, *, about: str, account: tuple[str, str] | None, data: dict[str, Any]) -> None:
        """Queue an event with the spend writer's next batch (from the request path: no I/O here)."""
        if self.writer is None or not self.wanted(kind):
            return
        for row in self.rows(kind, about, account, data, None):
            self.writer.add_outbox_row(Notification, row)

    async def start(self) -> None:
        if self.settings.enabled:
            await self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()


class NotificationSender:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.db = notifier.db
        self.settings = notifier.settings
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    async def claim(self) -> list[Notification]:
        """Due rows, leased to this replica (another one skips them until the lease ends)."""
        now = datetime.now(UTC)
        due = (
            select(Notification.event_id, Notification.target)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.created_at)
            .limit(BATCH)
        )
        async with self.db.session() as session:
            found = (await session.execute(due)).all()
            claimed: list[Notification] = []
            for ident, target in found:
                row = (
                    await session.execute(
                        update(Notification)
                        .where(
                            Notification.event_id == ident,
                            Notification.target == target,
                            Notification.status == "pending",
                            Notification.next_attempt_at <= now,
                        )
                        .values(next_attempt_at=now + LEASE)
                        .returning(Notification)
                    )
                ).scalar_one_or_none()
                if row is not None:
                    claimed.append(row)
        return claimed

    async def drain_once(self) -> int:
        rows = await self.claim()
        for row in rows:
            error = await self.deliver(row)
            await self._record(row, error)
        return len(rows)

    async def deliver(self, row: Notification) -> str | None:
        """None when delivered, else why not."""
        try:
            if row.target.startswith("mailto:"):
                await asyncio.to_thread(self._send_email, row)
                return None
            return await self._post(row)
        except Exception as exc:  # the receiver's failure is the row's, never the sender's
            return f"{type(exc).__name__}: {str(exc)[:200]}"

    async def _post(self, row: Notification) -> str | None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT))
        body = row.payload.encode()
        secret = self.settings.secret or ""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            "Proxyllm-Event-Id": row.event_id,
            "Proxyllm-Event-Type": row.type,
            "user-agent": "proxyllm-webhooks",
        }
        async with self._http.post(row.target, data=body, headers=headers, allow_redirects=False) as resp:
            if 200 <= resp.status < 300:
                return None
            return f"HTTP {resp.status}"

    def _send_email(self, row: Notification) -> None:
        smtp = self.settings.smtp
        assert smtp is not None
        event = orjson.loads(row.payload)
        message = EmailMessage()
        message["From"] = smtp.sender
        message["To"] = row.target.removeprefix("mailto:")
        message["Subject"] = SUBJECTS.get(row.type, row.type)
        message["Message-ID"] = f"<{row.event_id}@proxyllm>"
        lines = [SUBJECTS.get(row.type, row.type) + ".", ""]
        lines += [f"{k}: {v}" for k, v in (event.get("data") or {}).items()]
        message.set_content("\n".join(lines))
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if smtp.tls == "ssl":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=SEND_TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=SEND_TIMEOUT)
        with client:
            if smtp.tls == "starttls":
                client.starttls(context=context)
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)

    async def _record(self, row: Notification, error: str | None) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any]
        if error is None:
            values = {"status": "delivered", "delivered_at": now, "last_error": None, "attempts": row.attempts + 1}
        elif row.attempts + 1 >= self.settings.max_attempts:
            values = {"status": "failed", "last_error": error, "attempts": row.attempts + 1}
            log.error("notification %s to %s failed for good: %s", row.event_id, _shown(row.target), error)
        else:
            backoff = min(self.settings.retry_base * 2**row.attempts, MAX_BACKOFF) * (0.75 + random.random() / 2)
            values = {
                "last_error": error,
                "attempts": row.attempts + 1,
                "next_attempt_at": now + timedelta(seconds=backoff),
            }
            log.warning("notification %s to %s not delivered (%s); retrying", row.event_id, _shown(row.target), error)
        async with self.db.session() as session:
            await session.execute(
                update(Notification)
                .where(Notification.event_id == row.event_id, Notification.target == row.target)
                .values(**values)
            )

    async def _run(self) -> None:
        while True:
            try:
                if await self.drain_once():
                    continue
            except Exception as exc:
                log.warning("notification outbox not drained (%s); retrying", type(exc).__name__)
            await asyncio.sleep(0.5)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notification-sender")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None


def _shown(target: str) -> str:
    """A target as logged: a URL without its path or query (they may carry tokens)."""
    if target.startswith("mailto:"):
        return "an email address"
    parts = urlsplit(target)
    return f"{parts.scheme}://{parts.hostname}"


class NotifyHook(Hook):
    """Raises ``budget.reached`` when a budget refuses a request (once per key and day)."""

    name = "notifications"

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def after_call(self, ctx: RequestContext) -> None:
        error = ctx.error
        principal = ctx.principal
        if error is None or error.kind is not ErrorKind.BUDGET_EXCEEDED or principal is None:
            return
        day = datetime.now(UTC).date().isoformat()
        who = principal.key_hash or principal.user_id or principal.team_id or "unknown"
        account = ("user", principal.user_id) if principal.user_id else None
        self.notifier.emit_later(
            BUDGET_REACHED,
            about=f"{who}:{day}",
            account=account,
            data={
                "key_alias": principal.key_alias,
                "user_id": principal.user_id,
                "team_id": principal.team_id,
                "message": error.message[:500],
            },
        )

    async def start(self) -> None:
        await self.notifier.start()

    async def stop(self) -> None:
        await self.notifier.stop()
