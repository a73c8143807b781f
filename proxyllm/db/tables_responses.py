"""Stored responses of the Responses API (``store: true``), one row per response, per key owner."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from proxyllm.db.tables import Base
from proxyllm.db.tables_ops import utcnow


class StoredResponse(Base):
    """JSON columns are ``Text`` holding orjson output: NUL and other control characters arrive
    escaped there (``\\u0000``), which PostgreSQL's text type stores and its JSONB type would refuse."""

    __tablename__ = "stored_responses"
    __table_args__ = (
        Index("ix_stored_responses_owner", "owner", "id"),
        Index("ix_stored_responses_expires", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    owner: Mapped[str] = mapped_column(String(80))  # "key:<sha256>", "master" or "open"
    model: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    previous_response_id: Mapped[str | None] = mapped_column(String(160), default=None)
    input_items: Mapped[str] = mapped_column(Text)  # this request's own input items
    conversation: Mapped[str] = mapped_column(Text)  # every input item the response was made from
    response: Mapped[str] = mapped_column(Text)  # the Response object
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
