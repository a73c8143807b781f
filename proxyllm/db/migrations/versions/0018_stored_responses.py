"""Stored responses of the Responses API.

Revision ID: 0018
Revises: 0001
Create Date: 2026-11-29 22:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_responses",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous_response_id", sa.String(length=160), nullable=True),
        sa.Column("input_items", sa.Text(), nullable=False),
        sa.Column("conversation", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stored_responses", schema=None) as batch_op:
        batch_op.create_index("ix_stored_responses_owner", ["owner", "id"], unique=False)
        batch_op.create_index("ix_stored_responses_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stored_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_stored_responses_expires")
        batch_op.drop_index("ix_stored_responses_owner")
    op.drop_table("stored_responses")
