"""Operator controls: models managed at run time, change revisions, and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoredModel(Base):
    """A deployment added through ``/model/new``. Secret parameters live only in ``secret_params``,
    encrypted (see proxyllm/ops/crypto.py); ``litellm_params`` holds the rest in clear."""

    __tablename__ = "proxy_models"

    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(255), index=True)
    litellm_params: Mapped[JSONObject] = mapped_column(JSON, default=dict)
    secret_params: Mapped[str | None] = mapped_column(Text, default=None)
    model_info: Mapped[JSONObject] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_by: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class OpsRevision(Base):
    """A counter per kind of shared configuration, bumped in the transaction of every change, so
    replicas notice a change by reading one row."""

    __tablename__ = "ops_revisions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditLog(Base):
    __tablename__ = "audit_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))  # "master", "open", a key alias, "key:<hash prefix>", ...
    actor_key_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    action: Mapped[str] = mapped_column(String(64))  # "<object>.<verb>", e.g. key.update
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(255), default=None)
    before: Mapped[JSONObject | None] = mapped_column(JSON, default=None)
    after: Mapped[JSONObject | None] = mapped_column(JSON, default=None)
    client_ip: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (
        Index("ix_audit_logs_time", "created_at"),
        Index("ix_audit_logs_action_time", "action", "created_at"),
        Index("ix_audit_logs_target", "target_type", "target_id"),
        Index("ix_audit_logs_actor_time", "actor", "created_at"),
    )
