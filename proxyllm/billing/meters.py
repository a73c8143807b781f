"""Usage reported to Stripe Billing Meters through a durable outbox.

A request's meter events are queued with its spend log and written in the same batch transaction
(``SpendWriter.add_outbox_row``), so usage is recorded exactly when spend is. ``MeterSender`` drains
the outbox in the background: each event carries ``identifier`` = a stable id from the request id, so a
resend after a lost answer is deduplicated by Stripe. 429, 5xx and network errors are retried with
backoff; other 4xx mark the event failed with the reason; events past Stripe's 35-day window are
marked failed rather than dropped. Nothing here runs on the request path except building rows.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP

import stripe
from sqlalchemy import select, update

from proxyllm.accounts.writer import SpendWriter
from proxyllm.billing.ledger import AccountRef
from proxyllm.billing.service import Billing
from proxyllm.core.background import cancel
from proxyllm.core.context import RequestContext, Slot
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.hooks import Hook
from proxyllm.core.pricing import request_price
from proxyllm.db.tables_billing import MeterEvent

METERED: Slot[tuple[AccountRef, str | None]] = Slot("metered")  # (billing account, Stripe customer)

log = logging.getLogger("proxyllm.billing.meters")
STRIPE_WINDOW = 35 * 86400
LEASE = timedelta(seconds=60)  # a claimed batch is not picked by another replica for this long
RELEASE_TIMEOUT = 2.0  # seconds the stop gives the database to take a cut-short batch's claims back
BATCH = 100


def meter_rows(
    billing: Billing, ctx: RequestContext, account: tuple[str, str], customer: str
) -> list[dict[str, object]]:
    """The outbox rows for one finished request, per STRIPE_METER_VALUE."""
    settings = billing.settings
    usage = ctx.usage
    model = {"model": ctx.model_group}
    if settings.meter_value == "cost":
        units = request_price(ctx) * settings.meter_cost_unit  # what the customer is charged
        values = [("", int(units.to_integral_value(rounding=ROUND_HALF_UP)), model)]
    elif usage is None:
        return []
    elif settings.meter_value == "input_output":
        values = [
            (":input", usage.prompt_tokens, {**model, "token_type": "input"}),
            (":output", usage.completion_tokens, {**model, "token_type": "output"}),
        ]
    else:
        values = [("", usage.total_tokens, model)]
    when = int(ctx.started_wall)
    return [
        {
            "identifier": f"{ctx.request_id}{suffix}",
            "account_type": account[0],
            "account_id": account[1],
            "stripe_customer_id": customer,
            "event_name": settings.meter_event_name,
            "value": value,
            "dimensions": dims,
            "timestamp": when,
            "status": "pending",
            "attempts": 0,
        }
        for suffix, value, dims in values
        if value > 0
    ]


class MeterHook(Hook):
    """Refuses accounts with no Stripe customer (unless allowed); queues each request's meter events."""

    name = "meters"

    def __init__(self, billing: Billing, writer: SpendWriter) -> None:
        self.billing = billing
        self.writer = writer
        self.sender = MeterSender(billing)

    async def start(self) -> None:
        await self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()

    async def before_call(self, ctx: RequestContext) -> None:
        principal = ctx.principal
        if principal is None or principal.is_admin:
            return
        account = self.billing.account_of_request(ctx)
        customer = await self.billing.customer_id(account)
        if customer is None and not self.billing.settings.allow_unlinked:
            raise not_linked(account)
        ctx.put(METERED, (account, customer))

    async def after_call(self, ctx: RequestContext) -> None:
        found = ctx.get(METERED)
        if found is None or found[1] is None or ctx.outcome == "error" or ctx.cache_hit:
            return
        for row in meter_rows(self.billing, ctx, found[0], found[1]):
            self.writer.add_outbox_row(MeterEvent, row)


def not_linked(account: tuple[str, str]) -> ProxyError:
    return ProxyError(
        ErrorKind.INSUFFICIENT_QUOTA,
        f"{account[0]} '{account[1]}' is not set up for billing: no Stripe customer is linked to it "
        "(an admin sets stripe_customer_id, or the first top-up creates one)",
        code="billing_not_set_up",
    )


class MeterSender:
    def __init__(self, billing: Billing) -> None:
        self.billing = billing
        self.db = billing.db
        self.client = billing.api.meter_client
        self.interval = 1.0 / max(billing.settings.meter_rate, 0.1)
        self._next_send = 0.0
        self._session_token: tuple[str, float] | None = None
        self._task: asyncio.Task[None] | None = None
        self._held: list[str] = []  # identifiers of the batch in hand: claimed, outcome not written yet

    async def claim(self) -> list[MeterEvent]:
        now = datetime.now(UTC)
        due = (
            select(MeterEvent.identifier)
            .where(MeterEvent.status == "pending", MeterEvent.next_attempt_at <= now)
            .order_by(MeterEvent.created_at)
            .limit(BATCH)
        )
        async with self.db.session() as session:
            rows = (
                (
                    await session.execute(
                        update(MeterEvent)
                        .where(
                            MeterEvent.identifier.in_(due.scalar_subquery()),
                            MeterEvent.next_attempt_at <= now,
                            MeterEvent.status == "pending",
                        )
                        .values(next_attempt_at=now + LEASE)
                        .returning(MeterEvent)
                    )
                )
                .scalars()
                .all()
            )
        return list(rows)

    async def drain_once(self) -> int:
        """Send one batch; the number of events that reached a final state."""
        events = await self.claim()
        if not events:
            return 0
        self._held = [event.identifier for event in events]
        if self.billing.settings.meter_v2:
            outcomes = await self._send_v2(events)
        else:
            outcomes = [await self._send_v1(event) for event in events]
        # One UPDATE per distinct outcome (a batch usually has one), not one per event.
        groups: dict[tuple[str, str | None, int], list[str]] = {}
        for event, (status, error) in zip(events, outcomes, strict=True):
            attempts = event.attempts if status == "pending" else -1
            groups.setdefault((status, error, attempts), []).append(event.identifier)
        now = datetime.now(UTC)
        async with self.db.session() as session:
            for (status, error, attempts), identifiers in groups.items():
                values: dict[str, object] = {"status": status, "last_error": error}
                if status == "sent":
                    values["sent_at"] = now
                if status == "pending":
                    base = self.billing.settings.meter_retry_base
                    backoff = min(base * 2**attempts, 300) * (0.5 + random.random())
                    values["attempts"] = attempts + 1
                    values["next_attempt_at"] = now + timedelta(seconds=backoff)
                await session.execute(update(MeterEvent).where(MeterEvent.identifier.in_(identifiers)).values(**values))
        self._held = []
        return sum(len(ids) for (status, _, _), ids in groups.items() if status != "pending")

    def _too_old(self, event: MeterEvent) -> bool:
        return event.timestamp < time.time() - STRIPE_WINDOW + 60

    async def _pace(self, count: int = 1) -> None:
        now = time.monotonic()
        if self._next_send > now:
            await asyncio.sleep(self._next_send - now)
        self._next_send = max(now, self._next_send) + self.interval * count

    async def _send_v1(self, event: MeterEvent) -> tuple[str, str | None]:
        if self._too_old(event):
            return "failed", "older than Stripe's 35-day window for meter events"
        await self._pace()
        payload = {
            "stripe_customer_id": event.stripe_customer_id,
            "value": str(event.value),
            **{k: str(v) for k, v in (event.dimensions or {}).items()},
        }
        try:
            await self.client.v1.billing.meter_events.create_async(
                {
                    "event_name": event.event_name,
                    "payload": payload,
                    "identifier": event.identifier,
                    "timestamp": event.timestamp,
                }
            )
        except stripe.StripeError as error:
            return classify(error)
        return "sent", None

    async def _send_v2(self, events: list[MeterEvent]) -> list[tuple[str, str | None]]:
        fresh = [e for e in events if not self._too_old(e)]
        outcomes: dict[str, tuple[str, str | None]] = {
            e.identifier: ("failed", "older than Stripe's 35-day window for meter events")
            for e in events
            if self._too_old(e)
        }
        if fresh:
            await self._pace(len(fresh))
            try:
                token = await self._v2_token()
                await self.client.v2.billing.meter_event_stream.create_async(
                    {
                        "events": [
                            {
                                "event_name": e.event_name,
                                "identifier": e.identifier,
                                "timestamp": datetime.fromtimestamp(e.timestamp, UTC)
                                .isoformat()
                                .replace("+00:00", "Z"),
                                "payload": {
                                    "stripe_customer_id": e.stripe_customer_id,
                                    "value": str(e.value),
                                    **{k: str(v) for k, v in (e.dimensions or {}).items()},
                                },
                            }
                            for e in fresh
                        ]
                    },
                    options={"api_key": token},
                )
                result: tuple[str, str | None] = ("sent", None)
            except stripe.StripeError as error:
                if getattr(error, "http_status", None) == 401:
                    self._session_token = None
                result = classify(error)
            outcomes.update({e.identifier: result for e in fresh})
        return [outcomes[e.identifier] for e in events]

    async def _v2_token(self) -> str:
        if self._session_token is None or self._session_token[1] < time.time() + 60:
            session = await self.client.v2.billing.meter_event_session.create_async()
            expires = getattr(session, "expires_at", None)
            lifetime = (
                datetime.fromisoformat(str(expires)).timestamp() if isinstance(expires, str) else time.time() + 900
            )
            self._session_token = (str(session.authentication_token), lifetime)
        return self._session_token[0]

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.drain_once()
            except Exception as error:  # the database or Stripe being away must not end the sender
                log.warning("meter sender: %s", type(error).__name__)
                sent = 0
            await asyncio.sleep(0.05 if sent else 1.0)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="meter-sender")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        await self._release()

    async def _release(self) -> None:
        """A batch the stop cut short is due again at once (for another replica, or this one's next start)
        instead of after its lease. Sending an event twice is harmless: Stripe keeps one per identifier."""
        held, self._held = self._held, []
        if not held:
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT), self.db.session() as session:
                await session.execute(
                    update(MeterEvent)
                    .where(MeterEvent.identifier.in_(held), MeterEvent.status == "pending")
                    .values(next_attempt_at=datetime.now(UTC))
                )
        except Exception as error:  # the database is away: the lease runs out by itself
            log.warning("meter sender: %d claimed events wait for their lease (%s)", len(held), type(error).__name__)


def classify(error: stripe.StripeError) -> tuple[str, str | None]:
    """What an error means for the event: retry later (pending), already there (sent), or failed."""
    status = getattr(error, "http_status", None)
    message = (getattr(error, "user_message", None) or str(error) or type(error).__name__)[:450]
    if status is None or status == 429 or status >= 500 or isinstance(error, stripe.APIConnectionError):
        return "pending", f"{status or 'network'}: {message}"
    if "already exists" in message or getattr(error, "code", None) == "resource_already_exists":
        return "sent", None
    return "failed", f"{status}: {message}"
