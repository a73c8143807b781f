"""Alembic environment: migrations always run on a connection handed over by proxyllm.db.migrate."""

from alembic import context

# every table on Base.metadata, for autogenerate
import proxyllm.db.tables_billing
import proxyllm.db.tables_budgets
import proxyllm.db.tables_ops
import proxyllm.db.tables_responses  # noqa: F401
from proxyllm.db.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `proxyllm migrate`, which supplies the database connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
