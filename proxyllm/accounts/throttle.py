"""Failed authentication is throttled per client address and per key prefix.

After ``limit`` failures within ``window`` seconds from one address — or with keys that share their first
characters, from anywhere — further attempts get 429 with ``Retry-After`` until the window ends, before
any key is looked up (the API, the model endpoints and the dashboard's sign-in alike). Successful calls
cost one dictionary check while nothing is blocked. Failures are counted in the shared state (Redis when
configured), so replicas add up each other's failures; blocking decisions are kept per process.
"""

from __future__ import annotations

import logging
import time

from proxyllm.core.clients import client_address
from proxyllm.core.context import CURRENT_SCOPE
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.shared_state import SharedState

log = logging.getLogger("proxyllm.auth")
PREFIX_CHARS = 12  # "sk-" and 9 random characters: keys guessed around one known prefix
MAX_TRACKED = 100_000


def prefix_of(key: str) -> str:
    return key[:PREFIX_CHARS]


class AuthThrottle:
    def __init__(self, *, limit: int = 20, window: float = 60.0, state: SharedState | None = None) -> None:
        self.limit = limit
        self.window = window
        self.state = state
        self._local: dict[str, tuple[float, int]] = {}  # name -> (window end, failures) when no shared state
        self.blocked: dict[str, float] = {}  # name -> monotonic time the block ends

    @staticmethod
    def names(key: str | None) -> list[str]:
        names = [f"ip:{client_address(CURRENT_SCOPE.get()) or 'unknown'}"]
        if key:
            names.append(f"prefix:{prefix_of(key)}")
        return names

    def check(self, key: str | None) -> None:
        """Raise 429 when this caller's address or key prefix is blocked (cheap while nothing is)."""
        if not self.blocked:
            return
        now = time.monotonic()
        for name in self.names(key):
            until = self.blocked.get(name)
            if until is None:
                continue
            if until <= now:
                del self.blocked[name]
                continue
            raise ProxyError(
                ErrorKind.RATE_LIMIT,
                "too many failed authentication attempts; try again later",
                code="auth_throttled",
                retry_after=until - now,
            )

    async def failed(self, key: str | None) -> None:
        now = time.monotonic()
        for name in self.names(key):
            count = await self._count(name, now)
            if count >= self.limit and name not in self.blocked:
                if len(self.blocked) >= MAX_TRACKED:
                    self.blocked = {n: t for n, t in self.blocked.items() if t > now}
                self.blocked[name] = now + self.window
                log.warning("authentication throttled for %s after %d failures", name, count)

    async def _count(self, name: str, now: float) -> int:
        if self.state is not None:
            return await self.state.incr(f"auth-failures:{name}", 1, self.window)
        end, count = self._local.get(name, (0.0, 0))
        if end <= now:
            end, count = now + self.window, 0
            if len(self._local) >= MAX_TRACKED:
                self._local = {n: v for n, v in self._local.items() if v[0] > now}
        self._local[name] = (end, count + 1)
        return count + 1
