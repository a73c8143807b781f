"""Billing tables: accounts with balances, the ledger, top-ups, reservations and processed events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Base
from proxyllm.db.types import Money

ZERO = Decimal(0)


class BillingAccount(Base):
    """Who pays: a user, a team or an end user. ``balance`` counts settled money only."""

    __tablename__ = "billing_accounts"

    account_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    currency: Mapped[str] = mapped_column(String(8), default="usd")
    balance: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    reserved: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    total_topups: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    total_spent: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    low_balance_threshold: Mapped[Decimal | None] = mapped_column(Money, default=None)
    low_balance_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # What the account is charged (billing/prices.py): its rate card, else its own markup, else the defaults.
    rate_card: Mapped[str | None] = mapped_column(String(64), default=None)
    markup_percent: Mapped[Decimal | None] = mapped_column(Money, default=None)


class RateCardPrice(Base):
    """One model group's prices on a rate card (what a customer pays, not what the upstream costs)."""

    __tablename__ = "rate_card_prices"

    card: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_group: Mapped[str] = mapped_column(String(255), primary_key=True)
    input_per_token: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    output_per_token: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    cached_input_per_token: Mapped[Decimal | None] = mapped_column(Money, default=None)  # None: the input price
    per_request: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    per_image: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    per_second: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class LedgerEntry(Base):
    """Every change of a balance. Invariant: an account's balance == the sum of its entries' amounts."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    account_type: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(24))  # topup | usage | refund | dispute | adjustment
    amount: Mapped[Decimal] = mapped_column(Money)  # signed: credits positive, debits negative
    balance_after: Mapped[Decimal] = mapped_column(Money)
    reference: Mapped[str] = mapped_column(String(255))  # request id, checkout session, refund, dispute...
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("kind", "reference", name="uq_ledger_kind_reference"),  # no money moves twice
        Index("ix_ledger_account", "account_type", "account_id", "id"),
    )


class Topup(Base):
    __tablename__ = "topups"

    checkout_session_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_type: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="created")  # created | pending | paid | failed
    payment_intent: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Reservation(Base):
    """Money held for a request in flight; expired ones are released by the reconciler."""

    __tablename__ = "billing_reservations"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_type: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(Money)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class StripeEvent(Base):
    """Webhook events already processed: a redelivered event id changes nothing."""

    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MeterEvent(Base):
    """The durable outbox of usage for Stripe Billing Meters; a sender drains it in the background."""

    __tablename__ = "meter_events"

    identifier: Mapped[str] = mapped_column(String(128), primary_key=True)  # Stripe dedupes on it
    account_type: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(255))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    event_name: Mapped[str] = mapped_column(String(100))
    value: Mapped[int] = mapped_column(BigInteger)
    dimensions: Mapped[JSONObject] = mapped_column(JSON, default=dict)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # when the usage happened (epoch seconds)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (Index("ix_meter_events_due", "status", "next_attempt_at"),)


class Subscription(Base):
    """An account's Stripe subscription as the webhooks last described it."""

    __tablename__ = "subscriptions"

    subscription_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_type: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(255))
    stripe_customer_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32))
    price_id: Mapped[str | None] = mapped_column(String(255), default=None)
    current_period_start: Mapped[int | None] = mapped_column(BigInteger, default=None)
    current_period_end: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    past_due_since: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_invoice_status: Mapped[str | None] = mapped_column(String(32), default=None)
    last_event_at: Mapped[int] = mapped_column(BigInteger, default=0)  # ignore events older than this
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (Index("ix_subscriptions_account", "account_type", "account_id"),)


class Notification(Base):
    """The durable outbox of notifications: one row per (event, target), sent in the background.

    ``event_id`` is derived from what the event is about, so the same event is queued once however
    often it is raised (a retried batch, two replicas); a delivered row is never sent again."""

    __tablename__ = "notifications"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target: Mapped[str] = mapped_column(String(500), primary_key=True)  # a webhook URL or mailto:address
    type: Mapped[str] = mapped_column(String(64))
    account_type: Mapped[str | None] = mapped_column(String(16), default=None)
    account_id: Mapped[str | None] = mapped_column(String(255), default=None)
    payload: Mapped[str] = mapped_column(String)  # the JSON body, exactly as signed and sent
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)


class AutoRecharge(Base):
    """An account's automatic recharge: a saved card charged off-session when a settlement takes the
    balance under ``threshold``, at most ``monthly_cap`` per calendar month (UTC).

    ``attempt`` is the recharge in flight (also its Stripe idempotency key): it is set by one
    conditional UPDATE (``attempt IS NULL AND charged + amount <= monthly_cap``), so however many
    settlements on however many replicas see the low balance, one recharge starts; ``charged`` counts
    what was started this ``period`` (a failed attempt gives its amount back)."""

    __tablename__ = "auto_recharges"

    account_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    threshold: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    amount: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    monthly_cap: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    payment_method: Mapped[str | None] = mapped_column(String(255), default=None)
    period: Mapped[str] = mapped_column(String(7), default="")  # YYYY-MM
    charged: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    attempt: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    attempt_amount: Mapped[Decimal | None] = mapped_column(Money, default=None)
    attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)  # a sender's lease
    payment_intent: Mapped[str | None] = mapped_column(String(255), default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class CreditGrant(Base):
    """Promotional credit: part of the balance, spent before paid credit (highest ``priority`` first,
    then the soonest to expire); what is left at ``expires_at`` leaves the balance with a ledger entry."""

    __tablename__ = "credit_grants"

    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_type: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(Money)
    remaining: Mapped[Decimal] = mapped_column(Money)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    expired: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_credit_grants_account", "account_type", "account_id"),
        Index("ix_credit_grants_expiry", "expired", "expires_at"),
    )
