"""Initial schema: keys, users, teams, team members, spend logs (money as BIGINT nano-dollars).

Revision ID: 0001
Revises:
Create Date: 2026-11-24 22:08:16.060985
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keys",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("key_name", sa.String(length=64), nullable=False),
        sa.Column("key_alias", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("team_id", sa.String(length=255), nullable=True),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("max_budget", sa.BigInteger(), nullable=True),
        sa.Column("spend", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("budget_duration", sa.String(length=16), nullable=True),
        sa.Column("budget_reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("token"),
        sa.UniqueConstraint("key_alias"),
    )
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_keys_team_id"), ["team_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_keys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "spend_logs",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("api_key", sa.String(length=64), nullable=True),
        sa.Column("key_alias", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("team_id", sa.String(length=255), nullable=True),
        sa.Column("end_user", sa.String(length=255), nullable=True),
        sa.Column("call_type", sa.String(length=32), nullable=False),
        sa.Column("model_group", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("spend", sa.BigInteger(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ttft_ms", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("request_id"),
    )
    with op.batch_alter_table("spend_logs", schema=None) as batch_op:
        batch_op.create_index("ix_spend_logs_key_time", ["api_key", "start_time"], unique=False)
        batch_op.create_index("ix_spend_logs_model_time", ["model_group", "start_time"], unique=False)
        batch_op.create_index("ix_spend_logs_team_time", ["team_id", "start_time"], unique=False)
        batch_op.create_index("ix_spend_logs_time", ["start_time"], unique=False)
        batch_op.create_index("ix_spend_logs_user_time", ["user_id", "start_time"], unique=False)

    op.create_table(
        "teams",
        sa.Column("team_id", sa.String(length=255), nullable=False),
        sa.Column("team_alias", sa.String(length=255), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("max_budget", sa.BigInteger(), nullable=True),
        sa.Column("spend", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("budget_duration", sa.String(length=16), nullable=True),
        sa.Column("budget_reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("team_id"),
    )
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_teams_stripe_customer_id"), ["stripe_customer_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("user_email", sa.String(length=255), nullable=True),
        sa.Column("user_alias", sa.String(length=255), nullable=True),
        sa.Column("user_role", sa.String(length=32), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("max_budget", sa.BigInteger(), nullable=True),
        sa.Column("spend", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("budget_duration", sa.String(length=16), nullable=True),
        sa.Column("budget_reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_stripe_customer_id"), ["stripe_customer_id"], unique=False)

    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.team_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_members_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_members_user_id"))

    op.drop_table("team_members")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_stripe_customer_id"))

    op.drop_table("users")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teams_stripe_customer_id"))

    op.drop_table("teams")
    with op.batch_alter_table("spend_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_spend_logs_user_time")
        batch_op.drop_index("ix_spend_logs_time")
        batch_op.drop_index("ix_spend_logs_team_time")
        batch_op.drop_index("ix_spend_logs_model_time")
        batch_op.drop_index("ix_spend_logs_key_time")

    op.drop_table("spend_logs")
    with op.batch_alter_table("keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_keys_user_id"))
        batch_op.drop_index(batch_op.f("ix_keys_team_id"))

    op.drop_table("keys")
