"""Shared budgets and end users, under LiteLLM's names.

A ``Budget`` is a set of limits (max budget, rate limits, a reset period) that end users point at by
``budget_id``. As in LiteLLM, the budget holds no spend: each end user's own ``spend`` is checked
against the limits of the budget it points at, so one budget object serves many end users.

The check constraints repeat the admin API's bounds (``server/bounds.py``), so a value that got past
it some other way (the LiteLLM import, a hand-written row) is refused by the database as well.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Base
from proxyllm.db.types import Money

# Money columns hold nano-dollars: 1e9 dollars (MAX_MONEY) is 1e18 units.
MAX_MONEY_UNITS = 10**18
MAX_INT32 = 2**31 - 1


class Budget(Base):
    __tablename__ = "budgets"

    budget_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    max_budget: Mapped[Decimal | None] = mapped_column(Money, default=None)
    soft_budget: Mapped[Decimal | None] = mapped_column(Money, default=None)
    max_parallel_requests: Mapped[int | None] = mapped_column(Integer, default=None)
    tpm_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    rpm_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    model_max_budget: Mapped[JSONObject] = mapped_column(JSON, default=dict)
    budget_duration: Mapped[str | None] = mapped_column(String(16), default=None)
    budget_reset_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_by: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_by: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"max_budget IS NULL OR max_budget BETWEEN 0 AND {MAX_MONEY_UNITS}", name="ck_budgets_max"),
        CheckConstraint(f"soft_budget IS NULL OR soft_budget BETWEEN 0 AND {MAX_MONEY_UNITS}", name="ck_budgets_soft"),
        CheckConstraint(
            f"max_parallel_requests IS NULL OR max_parallel_requests BETWEEN 0 AND {MAX_INT32}",
            name="ck_budgets_parallel",
        ),
        CheckConstraint(f"tpm_limit IS NULL OR tpm_limit BETWEEN 0 AND {MAX_INT32}", name="ck_budgets_tpm"),
        CheckConstraint(f"rpm_limit IS NULL OR rpm_limit BETWEEN 0 AND {MAX_INT32}", name="ck_budgets_rpm"),
    )


class EndUser(Base):
    """A customer of the proxy's callers: the ``user`` of a request (LiteLLM's ``LiteLLM_EndUserTable``)."""

    __tablename__ = "end_users"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    alias: Mapped[str | None] = mapped_column(String(255), default=None)
    spend: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    budget_id: Mapped[str | None] = mapped_column(
        ForeignKey("budgets.budget_id", ondelete="SET NULL"), default=None, index=True
    )
    allowed_model_region: Mapped[str | None] = mapped_column(String(8), default=None)
    default_model: Mapped[str | None] = mapped_column(String(255), default=None)
    metadata_: Mapped[JSONObject] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (CheckConstraint("spend >= 0", name="ck_end_users_spend"),)
