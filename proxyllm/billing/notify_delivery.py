"""Delivering queued notifications: signed webhook POSTs and email, retried with backoff.

``NotificationSender`` leases due rows of the ``notifications`` table (so replicas do not send the same
row at once), sends each, and records the outcome: delivered, retried later, or failed for good after
``max_attempts``. Targets are logged without their path or query (they may carry tokens).
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
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import aiohttp
import orjson
from sqlalchemy import select, update

from proxyllm.billing.notify_settings import (
    BALANCE_LOW,
    BALANCE_ZERO,
    BUDGET_REACHED,
    RECHARGE_FAILED,
    RECHARGE_SUCCEEDED,
    SUBSCRIPTION_CHANGED,
    TOPUP_CREDITED,
    NotifySettings,
)
from proxyllm.core.background import cancel
from proxyllm.db.database import Database
from proxyllm.db.tables_billing import Notification

log = logging.getLogger("proxyllm.notify")

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
RELEASE_TIMEOUT = 2.0  # seconds the stop gives the database to take the unsent rows' claims back
BATCH = 50
SEND_TIMEOUT = 10.0
MAX_BACKOFF = 3600.0
SIGNATURE_HEADER = "Proxyllm-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class NotificationSender:
    def __init__(self, db: Database, settings: NotifySettings) -> None:
        self.db = db
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._held: list[tuple[str, str]] = []  # (event_id, target) claimed and not recorded yet

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
        self._held = [(row.event_id, row.target) for row in rows]
        for row in rows:
            error = await self.deliver(row)
            await self._record(row, error)
            self._held.remove((row.event_id, row.target))
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

    async def _release(self) -> None:
        """Rows the stop cut short are due again at once (for another replica, or the next start) instead of
        after their lease; a receiver that got one already knows its Proxyllm-Event-Id."""
        held, self._held = self._held, []
        if not held:
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT), self.db.session() as session:
                for event_id, target in held:
                    await session.execute(
                        update(Notification)
                        .where(
                            Notification.event_id == event_id,
                            Notification.target == target,
                            Notification.status == "pending",
                        )
                        .values(next_attempt_at=datetime.now(UTC))
                    )
        except Exception as exc:  # the database is away: the lease runs out by itself
            log.warning("%d claimed notifications wait for their lease (%s)", len(held), type(exc).__name__)

    async def _record(self, row: Notification, error: str | None) -> None:
        now = datetime.now(UTC)
        values: dict[str, object]
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
        await self._release()
        if self._http is not None:
            await self._http.close()
            self._http = None


def _shown(target: str) -> str:
    """A target as logged: a URL without its path or query (they may carry tokens)."""
    if target.startswith("mailto:"):
        return "an email address"
    parts = urlsplit(target)
    return f"{parts.scheme}://{parts.hostname}"
