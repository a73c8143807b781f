"""Database URLs as users and platforms write them -> SQLAlchemy async URLs."""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_SQLITE_FILE = "proxyllm.db"


def resolve_database_url(configured: str | None, env: Mapping[str, str] = os.environ) -> str:
    """``DATABASE_URL`` wins over ``general_settings.database_url``; the default is ./proxyllm.db."""
    return to_async_url(env.get("DATABASE_URL") or configured or f"sqlite:///{DEFAULT_SQLITE_FILE}")


def to_async_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` (as Railway gives them) -> asyncpg; ``sqlite://`` -> aiosqlite."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        # a bare path means a SQLite file
        return f"sqlite+aiosqlite:///{url}"
    base = scheme.split("+", 1)[0].lower()
    if base in ("postgres", "postgresql"):
        return f"postgresql+asyncpg://{rest}"
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ValueError(f"unsupported database URL scheme '{scheme}' (use postgresql:// or sqlite:///path)")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
