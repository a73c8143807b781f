"""Lifecycle hooks around one gateway call.

Auth, limits, budgets, billing, caching and logging are hooks. ``before_call`` runs in registration
order and may refuse the request by raising ``ProxyError``, or answer it (the cache) by returning the
response — body bytes or a stream of events: the hooks after that one then do not run. ``after_call``
runs once the outcome is known — for streams, after the last chunk or the client's disconnect — in
reverse order, and only for hooks whose ``before_call`` ran. The gateway only calls the methods a hook
overrides, so an idle hook costs nothing per request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from proxyllm.core.context import RequestContext

# What a before-hook may answer with instead of the upstream: a body, or a stream of events.
Answer = bytes | AsyncGenerator[bytes, None]


class Hook:
    name = "hook"

    async def before_call(self, ctx: RequestContext) -> Answer | None:
        """Check or prepare the request; raise ProxyError to refuse it, return an answer to give it."""

    async def after_call(self, ctx: RequestContext) -> None:
        """Account for the finished call: ``ctx.outcome`` is success, error or cancelled."""

    async def start(self) -> None:
        """Start background work (flushers, senders)."""

    async def stop(self) -> None:
        """Flush and stop background work; called on graceful shutdown."""


def overrides(hook: Hook, method: str) -> bool:
    return getattr(type(hook), method) is not getattr(Hook, method)
