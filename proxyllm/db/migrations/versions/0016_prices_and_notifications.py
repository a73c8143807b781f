"""Customer prices beside costs: spend logs' price, rate cards, per-account markups and rate cards.

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


def downgrade() -> None:
    op.drop_table("rate_card_prices")
    with op.batch_alter_table("billing_accounts") as batch:
        batch.drop_column("markup_percent")
        batch.drop_column("rate_card")
    with op.batch_alter_table("spend_logs") as batch:
        batch.drop_column("price")
