"""The request path's PostgreSQL pool: asyncpg itself, one prepared statement, one round trip.

SQLAlchemy costs a few hundred microseconds of CPU per statement (compilation, the greenlet bridge,
result processing); on a request path that runs thousands of times a second that is most of the
proxy's own time. The few statements that must run per request (the prepaid reservation) go
straight to asyncpg here: positional parameters, statements prepared once per connection (asyncpg's
cache), autocommit, no ping before each use.

Commits on this pool do not wait for the WAL flush (``synchronous_commit = off``): they hold money
(reservations), never move it, and a PostgreSQL crash can only forget the holds of its last moments
together with their rows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from proxyllm.db.url import to_async_url

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("proxyllm.db")
POOL_SIZE = 32  # connections kept for the request path (a pool smaller than the concurrency churns)


async def _keep(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing to undo (the default costs a round trip per statement)."""


class HotPoolUnavailable(Exception):
    """The statement could not run now (the database is down, busy or timed out)."""


class UniqueViolation(Exception):
    """The statement broke a unique constraint (e.g. a retried reservation that had committed)."""


def plain_dsn(url: str) -> str:
    """asyncpg's DSN from a SQLAlchemy URL (``postgresql+asyncpg://`` -> ``postgresql://``)."""
    async_url = to_async_url(url)
    return async_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class HotPool:
    def __init__(
        self, url: str, *, server_settings: dict[str, str], connect_timeout: float, size: int = POOL_SIZE
    ) -> None:
        self.size = size
        self.dsn = plain_dsn(url)
        self.server_settings = {**server_settings, "synchronous_commit": "off"}
        self.connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._creating: asyncio.Lock | None = None

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        if self._creating is None:
            self._creating = asyncio.Lock()
        async with self._creating:
            if self._pool is None:
                import asyncpg

                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.size,
                    timeout=self.connect_timeout,
                    server_settings=self.server_settings,
                    max_inactive_connection_lifetime=300,
                    reset=_keep,  # single autocommit statements leave no session state to reset
                )
        return self._pool

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """Run one self-contained statement (atomic alone, safe to run again after a dropped
        connection); retried once when the connection died under it."""
        import asyncpg

        for attempt in (1, 2):
            try:
                pool = await self._get_pool()
                async with pool.acquire(timeout=self.connect_timeout) as conn:
                    return list(await conn.fetch(sql, *args))
            except asyncpg.UniqueViolationError as error:
                raise UniqueViolation(str(error)) from None
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError) as error:
                if attempt == 2:
                    raise HotPoolUnavailable(type(error).__name__) from None
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresConnectionError,
                asyncpg.CannotConnectNowError,
                asyncpg.QueryCanceledError,
                asyncpg.LockNotAvailableError,
                asyncpg.DeadlockDetectedError,
                asyncpg.TooManyConnectionsError,
                asyncpg.AdminShutdownError,
            ) as error:
                raise HotPoolUnavailable(type(error).__name__) from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, OSError):
                pool.terminate()
