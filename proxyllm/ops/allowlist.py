"""The proxy-wide IP allowlist: ``general_settings.allowed_ips`` (addresses and CIDR ranges, IPv4 and IPv6).

Every other address gets 403 before any other work, except on the health endpoints the platform probes.
The middleware is pure ASGI. With no allowlist it only publishes the scope for the per-key check
(``core/clients.py``: client addresses, trusted proxies, a key's own ``metadata.allowed_ips``).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from proxyllm.core.clients import (
    HEALTH_PATHS,
    RESOLVER,
    ClientResolver,
    Networks,
    client_address,
    client_ip,
    not_allowed,
)
from proxyllm.core.context import CURRENT_SCOPE

log = logging.getLogger("proxyllm.allowlist")


class IPAllowlistMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed: Networks | None,
        resolver: ClientResolver,
        exempt_paths: frozenset[str] = HEALTH_PATHS,
    ) -> None:
        self.app = app
        self.allowed = allowed if allowed else None
        self.resolver = resolver if resolver.trusted else None
        self.exempt_paths = exempt_paths
        self._warned: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        if self.resolver is not None:
            scope[RESOLVER] = self.resolver
        token = CURRENT_SCOPE.set(scope)
        try:
            if self.allowed is not None and scope["path"] not in self.exempt_paths:
                ip = client_ip(scope)
                if ip is None or ip not in self.allowed:
                    await self._refuse(scope, send, client_address(scope))
                    return
            await self.app(scope, receive, send)
        finally:
            CURRENT_SCOPE.reset(token)

    async def _refuse(self, scope: Scope, send: Send, address: str | None) -> None:
        if len(self._warned) < 1024 and str(address) not in self._warned:
            self._warned.add(str(address))
            peer = scope.get("client")
            log.warning(
                "refused %s from %s (TCP peer %s): not in general_settings.allowed_ips",
                scope["path"],
                address,
                peer[0] if peer else None,
            )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        err = not_allowed(address, "general_settings.allowed_ips")
        body = err.body()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
