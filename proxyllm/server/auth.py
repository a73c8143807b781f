"""Who is calling. Keys come as ``Authorization: Bearer``, ``x-api-key`` or ``api-key``."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

from proxyllm.core.context import Principal, RequestContext
from proxyllm.core.hooks import Hook
from proxyllm.errors import ErrorKind, ProxyError

log = logging.getLogger("proxyllm.auth")
OPEN = Principal("open", is_admin=True)
MASTER = Principal("master", is_admin=True)


def key_from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The caller's key from raw ASGI headers (names are lower-case bytes)."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else value.decode("latin-1").strip()
        if name == b"x-api-key" or name == b"api-key":
            return value.decode("latin-1").strip()
    return None


class Authenticator:
    def __init__(self, master_key: str | None) -> None:
        self.master_key = master_key
        self._master_bytes = master_key.encode() if master_key else b""

    @property
    def open(self) -> bool:
        return not self.master_key

    async def authenticate(self, key: str | None) -> Principal:
        if not self.master_key:
            return OPEN
        if not key:
            raise ProxyError(
                ErrorKind.AUTHENTICATION,
                "no API key: send it as 'Authorization: Bearer <key>', 'x-api-key' or 'api-key'",
                code="invalid_api_key",
            )
        if hmac.compare_digest(key.encode(), self._master_bytes):
            return MASTER
        raise ProxyError(ErrorKind.AUTHENTICATION, "invalid API key", code="invalid_api_key")


class AuthHook(Hook):
    """First hook of every gateway call: sets ``ctx.principal`` and forgets the raw key."""

    name = "auth"

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def before_call(self, ctx: RequestContext) -> None:
        ctx.principal = await self.authenticator.authenticate(ctx.api_key)
        ctx.api_key = None
