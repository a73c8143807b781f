"""Who is calling. Keys come as ``Authorization: Bearer``, ``x-api-key`` or ``api-key``."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from proxyllm.accounts.keys import hash_key
from proxyllm.accounts.throttle import AuthThrottle
from proxyllm.core.clients import check_key_client
from proxyllm.core.context import Principal, RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.hooks import Hook

if TYPE_CHECKING:
    from proxyllm.accounts.cache import KeyCache

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


def refused(message: str) -> ProxyError:
    return ProxyError(ErrorKind.AUTHENTICATION, message, code="invalid_api_key")


class Authenticator:
    """The master key administers everything; virtual keys are looked up (cached) by their hash."""

    def __init__(self, master_key: str | None, keys: KeyCache | None = None) -> None:
        self.master_key = master_key
        self.keys = keys
        self._master_bytes = master_key.encode() if master_key else b""
        self.throttle = AuthThrottle()  # create_app replaces it with the configured, shared one

    async def authenticate(self, key: str | None) -> Principal:
        """The caller of ``key``; failures are counted and, past the limit, answered 429 before any lookup."""
        if not self.master_key:
            return OPEN
        self.throttle.check(key)
        try:
            return await self._authenticate(key)
        except ProxyError as error:
            if key and error.kind is ErrorKind.AUTHENTICATION:
                await self.throttle.failed(key)
            raise

    @property
    def open(self) -> bool:
        return not self.master_key

    async def _authenticate(self, key: str | None) -> Principal:
        if not key:
            raise ProxyError(
                ErrorKind.AUTHENTICATION,
                "no API key: send it as 'Authorization: Bearer <key>', 'x-api-key' or 'api-key'",
                code="invalid_api_key",
            )
        if hmac.compare_digest(key.encode(), self._master_bytes):
            return MASTER
        if self.keys is None:
            raise refused("invalid API key")
        token = hash_key(key)
        record = await self.keys.get(token)
        if record is None:
            raise refused("invalid API key: no such key")
        if record.deleted:
            raise refused("this API key was deleted")
        if record.key.blocked:
            raise refused("this API key is blocked")
        if record.expires is not None and record.expires <= datetime.now(UTC):
            raise refused(f"this API key expired at {record.expires.isoformat()}")
        if record.team is not None and record.team.blocked:
            raise refused(f"team '{record.team.id}' of this API key is blocked")
        if record.user is not None and record.user.blocked:
            raise refused(f"user '{record.user.id}' of this API key is blocked")
        if record.metadata.get("allowed_ips"):
            check_key_client(record.metadata["allowed_ips"])
        return Principal(
            "key",
            key_hash=token,
            key_alias=record.key_alias,
            user_id=record.user.id if record.user else None,
            team_id=record.team.id if record.team else None,
            metadata=record.metadata,
            auth=record,
        )


class AuthHook(Hook):
    """First hook of every gateway call: sets ``ctx.principal`` and forgets the raw key."""

    name = "auth"

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def before_call(self, ctx: RequestContext) -> None:
        ctx.principal = await self.authenticator.authenticate(ctx.api_key)
        ctx.api_key = None
