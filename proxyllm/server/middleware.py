"""A request id on every response: the hot-path endpoints set their own; this covers the rest."""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CALL_ID = b"x-litellm-call-id"


class RequestIdMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): adds ``x-litellm-call-id`` where a route did not."""

    def __init__(self, app: ASGIApp, skip_paths: frozenset[str]) -> None:
        self.app = app
        self.skip_paths = skip_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4()).encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if all(name != CALL_ID for name, _ in headers):
                    headers.append((CALL_ID, request_id))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
