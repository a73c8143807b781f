"""Tables: keys, users, teams and their members, spend logs. Money columns are ``Money``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.types import Money


class Base(DeclarativeBase):
    type_annotation_map = {JSONObject: JSON, list[str]: JSON, Decimal: Money}


def _now_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class BudgetColumns:
    """What every budgeted account has: a budget, what it spent (cost and price), and when that resets."""

    max_budget: Mapped[Decimal | None] = mapped_column(Money, default=None)
    spend: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")  # the operator's cost
    # What the account's requests were charged (the customer's price; migration 0020): budgets count it
    # instead of ``spend`` when ``billing.budgets_at_price`` is on.
    spend_price: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    budget_duration: Mapped[str | None] = mapped_column(String(16), default=None)
    budget_reset_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    tpm_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    rpm_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    max_parallel_requests: Mapped[int | None] = mapped_column(Integer, default=None)
    metadata_: Mapped[JSONObject] = mapped_column("metadata", JSON, default=dict)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class User(BudgetColumns, Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_email: Mapped[str | None] = mapped_column(String(255), default=None)
    user_alias: Mapped[str | None] = mapped_column(String(255), default=None)
    user_role: Mapped[str] = mapped_column(String(32), default="internal_user")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Team(BudgetColumns, Base):
    __tablename__ = "teams"

    team_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    team_alias: Mapped[str | None] = mapped_column(String(255), default=None)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.team_id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(32), default="user")


class Key(BudgetColumns, Base):
    __tablename__ = "keys"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex of the raw key
    key_name: Mapped[str] = mapped_column(String(64))  # masked form, e.g. sk-...a1b2
    key_alias: Mapped[str | None] = mapped_column(String(255), default=None, unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    team_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class SpendLog(Base):
    __tablename__ = "spend_logs"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key: Mapped[str | None] = mapped_column(String(64), default=None)  # key hash, never the key
    key_alias: Mapped[str | None] = mapped_column(String(255), default=None)
    user_id: Mapped[str | None] = mapped_column(String(255), default=None)
    team_id: Mapped[str | None] = mapped_column(String(255), default=None)
    end_user: Mapped[str | None] = mapped_column(String(255), default=None)
    call_type: Mapped[str] = mapped_column(String(32))
    model_group: Mapped[str] = mapped_column(String(255))
    model: Mapped[str | None] = mapped_column(String(255), default=None)  # provider/upstream name
    model_id: Mapped[str | None] = mapped_column(String(64), default=None)  # deployment id
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    total_tokens: Mapped[int] = mapped_column(Integer, default=0)
    spend: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))  # the operator's cost (LiteLLM's field)
    price: Mapped[Decimal | None] = mapped_column(Money, default=None)  # what the customer is charged
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ttft_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(16))  # success | error | cancelled
    error_class: Mapped[str | None] = mapped_column(String(64), default=None)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    stream: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_spend_logs_key_time", "api_key", "start_time"),
        Index("ix_spend_logs_user_time", "user_id", "start_time"),
        Index("ix_spend_logs_team_time", "team_id", "start_time"),
        Index("ix_spend_logs_model_time", "model_group", "start_time"),
        Index("ix_spend_logs_time", "start_time"),
    )


class DeadLetter(Base):
    """A queued write the database refused (e.g. a value out of range), kept with the reason.

    ``payload`` is the item as journaled by ``db/spool.py`` (JSON text: a JSON column would refuse the
    very NUL bytes that may have put the row here)."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
