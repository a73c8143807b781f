"""The database handle: engine, sessions, migrations, and what "down" means."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.db.hot import POOL_SIZE as HOT_POOL_SIZE
from proxyllm.db.hot import HotPool, HotPoolUnavailable
from proxyllm.db.url import is_sqlite, redact

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger("proxyllm.db")
CONNECT_TIMEOUT = 5.0
# A slow database degrades, it does not stall: no statement waits on a lock or runs longer than this
# (PostgreSQL; overridable with PROXYLLM_DB_STATEMENT_TIMEOUT_MS / PROXYLLM_DB_LOCK_TIMEOUT_MS).
STATEMENT_TIMEOUT_MS = 10_000
LOCK_TIMEOUT_MS = 3_000
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,
    OSError,
    asyncio.TimeoutError,
)


class DatabaseUnavailable(ProxyError):
    def __init__(self, reason: str) -> None:
        super().__init__(
            ErrorKind.UNAVAILABLE,
            f"the database is unavailable ({reason}); try again shortly",
            code="database_unavailable",
        )


# PostgreSQL conditions that say "not now" rather than "never": the same statement may succeed later.
TRANSIENT_SQLSTATES = frozenset(
    {
        "57014",  # query_canceled (statement_timeout)
        "55P03",  # lock_not_available (lock_timeout)
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
    }
)


def is_unavailable(error: BaseException) -> bool:
    """True when the database could not do the work now (down, busy, timed out), as opposed to
    refusing the data itself (a value too long, a NUL byte, a constraint)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        if state in TRANSIENT_SQLSTATES or (isinstance(state, str) and state.startswith("08")):
            return True
        if isinstance(error, exc.OperationalError) and "database is locked" in str(error.orig):
            return True  # SQLite's busy timeout
    return isinstance(error, UNAVAILABLE_ERRORS)


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    def __init__(
        self,
        url: str,
        *,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        pool_size: int = 10,
        hot_pool_size: int = HOT_POOL_SIZE,
    ) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        self.hot: HotPool | None = None
        if self.sqlite:
            self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": 10})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            server_settings = {
                "statement_timeout": str(statement_timeout_ms),
                "lock_timeout": str(lock_timeout_ms),
                "idle_in_transaction_session_timeout": str(max(statement_timeout_ms * 3, 30_000)),
            }
            connect_args: dict[str, object] = {
                "timeout": CONNECT_TIMEOUT,
                "command_timeout": statement_timeout_ms / 1000 + 5,  # the client's own backstop
                "server_settings": server_settings,
            }
            self.engine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=CONNECT_TIMEOUT,
                pool_pre_ping=True,
                connect_args=connect_args,
            )
            self.hot = HotPool(
                url,
                server_settings=server_settings,
                connect_timeout=CONNECT_TIMEOUT,
                size=hot_pool_size,
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def hot_rows(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """One self-contained statement on the request path's pool (``db/hot.py``), PostgreSQL only;
        a 503 when the database cannot run it now. ``UniqueViolation`` passes through."""
        assert self.hot is not None, "hot_rows is for PostgreSQL"
        try:
            return await self.hot.fetch(sql, *args)
        except HotPoolUnavailable as error:
            log.warning("database unavailable: %s", error)
            raise DatabaseUnavailable(str(error)) from None

    def describe(self) -> str:
        return redact(self.url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success; an unreachable database is a 503."""
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except ProxyError:
            raise
        except BaseException as error:
            if is_unavailable(error):
                log.warning("database unavailable: %s", type(error).__name__)
                raise DatabaseUnavailable(type(error).__name__) from None
            raise

    async def ping(self) -> str | None:
        """None when the database answers, else why not."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                raise
            return type(error).__name__
        return None

    async def migrate(self) -> None:
        from proxyllm.db.migrate import upgrade

        await upgrade(self)

    async def close(self) -> None:
        await self.engine.dispose()
        if self.hot is not None:
            await self.hot.close()
