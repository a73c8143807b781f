"""Priced spend beside spend: keys, users and teams count what their requests were charged (the price).

``spend`` stays the operator's cost (LiteLLM's field); ``spend_price`` is the customer's price, which
budgets use when ``billing.budgets_at_price`` is on. Existing accounts start with their spend as their
priced spend (until this revision, nothing told the two apart per account).

Revision ID: 0020
Revises: 0001
Create Date: 2026-11-30 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("keys", "users", "teams")
MAX_MONEY_UNITS = 10**18  # core/bounds.py MAX_MONEY (1e9 dollars) in nano-dollars


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("spend_price", sa.BigInteger(), server_default="0", nullable=False))
        op.execute(
            f"UPDATE {table} SET spend_price = CASE WHEN spend < 0 THEN 0 "
            f"WHEN spend > {MAX_MONEY_UNITS} THEN {MAX_MONEY_UNITS} ELSE spend END"
        )
        with op.batch_alter_table(table) as batch:
            batch.create_check_constraint(
                f"ck_{table}_spend_price", f"spend_price >= 0 AND spend_price <= {MAX_MONEY_UNITS}"
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"ck_{table}_spend_price", type_="check")
            batch.drop_column("spend_price")
