"""Storage: SQLAlchemy 2 async over SQLite (embedded default) or PostgreSQL, migrated by Alembic."""

from proxyllm.db.database import Database, DatabaseUnavailable
from proxyllm.db.url import resolve_database_url

__all__ = ["Database", "DatabaseUnavailable", "resolve_database_url"]
