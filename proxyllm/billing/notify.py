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

This module builds and queues events (and raises ``budget.reached`` from the request path);
``notify_delivery.py`` sends them; ``notify_settings.py`` reads the environment (``PROXYLLM_WEBHOOK_*``,
``PROXYLLM_NOTIFICATIONS_OFF``, ``PROXYLLM_SMTP_*``; email goes to the account's user).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
from sqlalchemy.dialects import postgresql, sqlite

from proxyllm.billing.notify_delivery import NotificationSender, sign
from proxyllm.billing.notify_settings import (
    BALANCE_LOW,
    BALANCE_ZERO,
    BUDGET_REACHED,
    EVENT_TYPES,
    RECHARGE_FAILED,
    RECHARGE_SUCCEEDED,
    SUBSCRIPTION_CHANGED,
    TOPUP_CREDITED,
    NotifyConfigError,
    NotifySettings,
    Smtp,
    notify_settings,
)
from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind
from proxyllm.core.hooks import Hook
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.database import Database
from proxyllm.db.tables import User
from proxyllm.db.tables_billing import Notification

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from proxyllm.accounts.writer import SpendWriter

__all__ = [
    "BALANCE_LOW",
    "BALANCE_ZERO",
    "BUDGET_REACHED",
    "EVENT_TYPES",
    "RECHARGE_FAILED",
    "RECHARGE_SUCCEEDED",
    "SUBSCRIPTION_CHANGED",
    "TOPUP_CREDITED",
    "NotificationSender",
    "Notifier",
    "NotifyConfigError",
    "NotifyHook",
    "NotifySettings",
    "Smtp",
    "event_id",
    "notify_settings",
    "sign",
]


def event_id(kind: str, about: str) -> str:
    """A stable id from what the event is about: raised twice, it is still one event."""
    return "evt_" + hashlib.sha256(f"{kind}\x00{about}".encode()).hexdigest()[:32]


def _json_default(value: object) -> str:
    return str(value)  # Decimal amounts as exact strings


class Notifier:
    """Queues events (in the caller's transaction or through the spend writer) and delivers them."""

    def __init__(self, settings: NotifySettings, db: Database, *, writer: SpendWriter | None = None) -> None:
        self.settings = settings
        self.db = db
        self.writer = writer
        self.sender = NotificationSender(db, settings)

    def wanted(self, kind: str) -> bool:
        return self.settings.enabled and kind not in self.settings.off

    def rows(
        self, kind: str, about: str, account: tuple[str, str] | None, data: JSONObject, email: str | None
    ) -> list[JSONObject]:
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
        data: JSONObject,
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

    def emit_later(self, kind: str, *, about: str, account: tuple[str, str] | None, data: JSONObject) -> None:
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
