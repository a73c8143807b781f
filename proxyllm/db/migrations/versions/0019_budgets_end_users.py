"""Shared budgets and end users (LiteLLM's budget and end-user tables).

End users known so far only as billing accounts (``/customer/new`` before this revision) get their
row, so they keep working under the new endpoints.

Revision ID: 0019
Revises: 0001
Create Date: 2026-11-30 00:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0001"
branch_labels = None
depends_on = "0007"  # billing_accounts, whose end users are copied

MAX_MONEY_UNITS = 10**18  # 1e9 dollars in nano-dollars
MAX_INT32 = 2**31 - 1


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(length=255), nullable=False),
        sa.Column("max_budget", sa.BigInteger(), nullable=True),
        sa.Column("soft_budget", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.Integer(), nullable=True),
        sa.Column("tpm_limit", sa.Integer(), nullable=True),
        sa.Column("rpm_limit", sa.Integer(), nullable=True),
        sa.Column("model_max_budget", sa.JSON(), nullable=False),
        sa.Column("budget_duration", sa.String(length=16), nullable=True),
        sa.Column("budget_reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("budget_id"),
        sa.CheckConstraint(f"max_budget IS NULL OR max_budget BETWEEN 0 AND {MAX_MONEY_UNITS}", name="ck_budgets_max"),
        sa.CheckConstraint(
            f"soft_budget IS NULL OR soft_budget BETWEEN 0 AND {MAX_MONEY_UNITS}", name="ck_budgets_soft"
        ),
        sa.CheckConstraint(
            f"max_parallel_requests IS NULL OR max_parallel_requests BETWEEN 0 AND {MAX_INT32}",
            name="ck_budgets_parallel",
        ),
        sa.CheckConstraint(f"tpm_limit IS NULL OR tpm_limit BETWEEN 0 AND {MAX_INT32}", name="ck_budgets_tpm"),
        sa.CheckConstraint(f"rpm_limit IS NULL OR rpm_limit BETWEEN 0 AND {MAX_INT32}", name="ck_budgets_rpm"),
    )
    op.create_table(
        "end_users",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=True),
        sa.Column("spend", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("blocked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("budget_id", sa.String(length=255), nullable=True),
        sa.Column("allowed_model_region", sa.String(length=8), nullable=True),
        sa.Column("default_model", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.budget_id"], ondelete="SET NULL"),
        sa.CheckConstraint("spend >= 0", name="ck_end_users_spend"),
    )
    with op.batch_alter_table("end_users", schema=None) as batch_op:
        batch_op.create_index("ix_end_users_budget_id", ["budget_id"], unique=False)
    bind = op.get_bind()
    known = bind.execute(sa.text("SELECT account_id FROM billing_accounts WHERE account_type = 'end_user'")).all()
    if known:
        end_users = sa.table(
            "end_users",
            sa.column("user_id", sa.String),
            sa.column("spend", sa.BigInteger),
            sa.column("blocked", sa.Boolean),
            sa.column("metadata", sa.JSON),
        )
        op.bulk_insert(end_users, [{"user_id": r[0], "spend": 0, "blocked": False, "metadata": {}} for r in known])


def downgrade() -> None:
    with op.batch_alter_table("end_users", schema=None) as batch_op:
        batch_op.drop_index("ix_end_users_budget_id")
    op.drop_table("end_users")
    op.drop_table("budgets")
