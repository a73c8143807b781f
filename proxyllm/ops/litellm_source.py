"""Reading a LiteLLM proxy's database: its tables, and its values as proxyllm stores them.

LiteLLM's database is only read (asyncpg, Prisma's quoted table names). Its float dollars become exact
decimals, its BigInt limits fit proxyllm's integer columns, its JSON columns (text under asyncpg) are
parsed, and the model secrets it sealed with its salt key are opened.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

from proxyllm.core.bounds import MAX_MONEY
from proxyllm.core.jsontypes import JSONObject, JSONValue

INT32 = 2**31 - 1


class ImportError_(Exception):
    """The source cannot be imported (unreachable, not a LiteLLM database, a secret that does not open)."""


def money(value: JSONValue) -> Decimal | None:
    """LiteLLM's float dollars as exact decimals (its shortest repr: 0.1 stays 0.1)."""
    if value is None:
        return None
    return Decimal(repr(float(value))) if not isinstance(value, Decimal) else value


def bounded_money(value: JSONValue) -> Decimal | None:
    """Money within what proxyllm stores (0 to 1e9 dollars); LiteLLM's floats may be anything."""
    amount = money(value)
    if amount is None or not amount.is_finite():
        return None
    return min(max(amount, Decimal(0)), MAX_MONEY)


def limit(value: JSONValue) -> int | None:
    """LiteLLM's BigInt limits into proxyllm's integer columns."""
    if value is None:
        return None
    return max(0, min(int(value), INT32))


def text(value: JSONValue, width: int = 255) -> str | None:
    if value is None:
        return None
    cleaned = str(value).replace("\x00", "")
    return cleaned[:width]


def jsonish(value: JSONValue) -> JSONValue:
    """asyncpg gives JSON columns as text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def open_litellm_secret(value: str, salt_key: str) -> str:
    """A value LiteLLM encrypted for its database (PyNaCl SecretBox under SHA-256 of its salt key,
    base64 in its URL-safe or standard alphabet); plain values come back as they are."""
    try:
        from nacl.exceptions import CryptoError
        from nacl.secret import SecretBox
    except ImportError:  # pragma: no cover - an install without the optional dependency
        raise ImportError_(
            "LiteLLM's stored model secrets are sealed with PyNaCl: `pip install pynacl` to import them"
        ) from None
    box = SecretBox(hashlib.sha256(salt_key.encode()).digest())
    candidates = []
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            candidates.append(decode(value))
        except ValueError:
            continue
    for raw in candidates:
        if len(raw) <= SecretBox.NONCE_SIZE + SecretBox.MACBYTES:
            continue
        try:
            return bytes(box.decrypt(raw)).decode("utf-8")
        except (CryptoError, UnicodeDecodeError):
            continue
    return value


class LiteLLMSource:
    """Reads LiteLLM's tables (Prisma's quoted table names) with asyncpg."""

    TABLES = (
        "LiteLLM_BudgetTable",
        "LiteLLM_UserTable",
        "LiteLLM_TeamTable",
        "LiteLLM_TeamMembership",
        "LiteLLM_VerificationToken",
        "LiteLLM_EndUserTable",
        "LiteLLM_ProxyModelTable",
    )

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def read(self) -> dict[str, list[JSONObject]]:
        import asyncpg

        try:
            conn = await asyncpg.connect(self.url, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ImportError_(f"cannot connect to the LiteLLM database: {type(exc).__name__}: {exc}") from None
        try:
            present = {
                row["table_name"]
                for row in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                )
            }
            if "LiteLLM_VerificationToken" not in present:
                raise ImportError_("this is not a LiteLLM database: it has no LiteLLM_VerificationToken table")
            data: dict[str, list[JSONObject]] = {}
            for table in self.TABLES:
                rows = await conn.fetch(f'SELECT * FROM "{table}"') if table in present else []
                data[table] = [dict(row) for row in rows]
            return data
        finally:
            await conn.close()
