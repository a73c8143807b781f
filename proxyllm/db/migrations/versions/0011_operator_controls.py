"""Operator controls: models stored in the database (secrets encrypted), change revisions, audit log.

Revision ID: 0011
Revises: 0001
Create Date: 2026-11-25 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_models",
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=255), nullable=False),
        sa.Column("litellm_params", sa.JSON(), nullable=False),
        sa.Column("secret_params", sa.Text(), nullable=True),
        sa.Column("model_info", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_id"),
    )
    with op.batch_alter_table("proxy_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proxy_models_model_name"), ["model_name"], unique=False)

    revisions = op.create_table(
        "ops_revisions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(revisions, [{"name": "models", "revision": 0}])

    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("actor_key_hash", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.create_index("ix_audit_logs_time", ["created_at"], unique=False)
        batch_op.create_index("ix_audit_logs_action_time", ["action", "created_at"], unique=False)
        batch_op.create_index("ix_audit_logs_target", ["target_type", "target_id"], unique=False)
        batch_op.create_index("ix_audit_logs_actor_time", ["actor", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_logs_actor_time")
        batch_op.drop_index("ix_audit_logs_target")
        batch_op.drop_index("ix_audit_logs_action_time")
        batch_op.drop_index("ix_audit_logs_time")
    op.drop_table("audit_logs")
    op.drop_table("ops_revisions")
    with op.batch_alter_table("proxy_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proxy_models_model_name"))
    op.drop_table("proxy_models")
