"""Reselling: spend logs' price, rate cards and markups, the notification outbox, auto-recharge, grants.

Revision ID: 0016
Revises: 0001
Create Date: 2026-11-29 22:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0001"
branch_labels = None
depends_on = ("0007",)  # billing_accounts


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False)


def _now(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("spend_logs") as batch:
        batch.add_column(sa.Column("price", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("billing_accounts") as batch:
        batch.add_column(sa.Column("rate_card", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("markup_percent", sa.BigInteger(), nullable=True))
    op.create_table(
        "rate_card_prices",
        sa.Column("card", sa.String(length=64), nullable=False),
        sa.Column("model_group", sa.String(length=255), nullable=False),
        sa.Column("input_per_token", sa.BigInteger(), nullable=False),
        sa.Column("output_per_token", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_per_token", sa.BigInteger(), nullable=True),
        sa.Column("per_request", sa.BigInteger(), nullable=False),
        sa.Column("per_image", sa.BigInteger(), nullable=False),
        sa.Column("per_second", sa.BigInteger(), nullable=False),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("card", "model_group"),
    )
    op.create_table(
        "notifications",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("account_type", sa.String(length=16), nullable=True),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        _now("next_attempt_at"),
        _now("created_at"),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "target"),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_table(
        "auto_recharges",
        sa.Column("account_type", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("monthly_cap", sa.BigInteger(), nullable=False),
        sa.Column("payment_method", sa.String(length=255), nullable=True),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("charged", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.String(length=64), nullable=True),
        sa.Column("attempt_amount", sa.BigInteger(), nullable=True),
        sa.Column("attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_intent", sa.String(length=255), nullable=True),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("account_type", "account_id"),
        sa.UniqueConstraint("attempt", name="uq_auto_recharges_attempt"),
    )
    op.create_table(
        "credit_grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("account_type", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        _now("created_at"),
        sa.PrimaryKeyConstraint("grant_id"),
    )
    op.create_index("ix_credit_grants_account", "credit_grants", ["account_type", "account_id"])
    op.create_index("ix_credit_grants_expiry", "credit_grants", ["expired", "expires_at"])


def downgrade() -> None:
    op.drop_table("credit_grants")
    op.drop_table("auto_recharges")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("rate_card_prices")
    with op.batch_alter_table("billing_accounts") as batch:
        batch.drop_column("markup_percent")
        batch.drop_column("rate_card")
    with op.batch_alter_table("spend_logs") as batch:
        batch.drop_column("price")
