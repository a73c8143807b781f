"""The response cache as a hook: look up before the router, store after the response went out.

Runs after authentication, model access and rate limits (a key that may not use a model never gets
its cached answers) and before budgets and prepaid credit, so a hit reserves and charges no money. A
hit is returned by ``before_call`` (the body, or a stream replaying the events) and the gateway answers with it
without calling an upstream or the hooks after this one; a hit costs nothing, is marked
with ``x-litellm-cache-key`` and logged as ``cache_hit``. A miss asks the gateway for the response
through ``ctx.response_wrapper`` and stores it once the call ended well (a complete stream only).

Per request, the body's ``cache`` object (LiteLLM's controls): ``no-cache`` (do not read),
``no-store`` (do not write), ``ttl`` (seconds to keep this answer), ``s-maxage`` (accept only an
answer at most this old), ``namespace`` (a separate set of entries), ``use-cache`` (opt in when the
cache's mode is ``default_off``). A key whose metadata has ``allowed_cache_controls`` may use only the
controls listed there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from types import TracebackType

from proxyllm.cache.entry import BODY, STREAM, decode, encode
from proxyllm.cache.keys import request_digest
from proxyllm.cache.settings import CacheSettings
from proxyllm.cache.store import CacheStore, LocalStore
from proxyllm.core.context import RequestContext, Slot
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.hooks import Answer, Hook
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.router import Router

log = logging.getLogger("proxyllm.cache")
MAX_ENTRY_BYTES = 4 * 1024 * 1024
PENDING: Slot[tuple[str, float]] = Slot("cache_pending")  # (store key, ttl) of a miss to be stored
CAPTURED: Slot[bytes | Recording] = Slot("cache_captured")  # the response of a miss, as it went out
CONTROLS = {"no-cache": bool, "no-store": bool, "use-cache": bool, "ttl": float, "s-maxage": float}


class Recording(AsyncGenerator[bytes, None]):
    """Passes a stream's events through and keeps a copy; closing it closes the stream it wraps."""

    __slots__ = ("events", "inner")

    def __init__(self, inner: AsyncGenerator[bytes, None], events: list[bytes]) -> None:
        self.inner = inner
        self.events = events

    def __aiter__(self) -> Recording:
        return self

    async def __anext__(self) -> bytes:
        event = await anext(self.inner)
        self.events.append(event)
        return event

    async def asend(self, value: None) -> bytes:
        return await self.__anext__()

    async def athrow(
        self, typ: type[BaseException] | BaseException, val: object = None, tb: TracebackType | None = None
    ) -> bytes:
        if isinstance(typ, BaseException):
            return await self.inner.athrow(typ, None, tb)
        return await self.inner.athrow(typ, val, tb)

    async def aclose(self) -> None:
        await self.inner.aclose()


class CacheHook(Hook):
    name = "cache"

    def __init__(self, settings: CacheSettings, router: Router, store: CacheStore | None = None) -> None:
        self.settings = settings
        self.router = router
        self.store = store or build_store(settings)
        self.prefix = settings.namespace + ":" if settings.namespace else ""
        if self.store.name == "redis" and not settings.namespace:
            self.prefix = "proxyllm-cache:"

    async def before_call(self, ctx: RequestContext) -> Answer | None:
        settings = self.settings
        if ctx.operation not in settings.operations:
            return None
        controls = self.controls(ctx)
        if controls is None:
            if not settings.default_on:
                return None
            controls = {}
        elif not (settings.default_on or controls.get("use-cache") is True):
            return None
        group = ctx.group or self.router.find(ctx.model)
        if group is None:
            return None  # the router will answer 404
        digest = request_digest(ctx, group.name)
        namespace = controls.get("namespace")
        key = f"{namespace}:{digest}" if namespace else self.prefix + digest
        if controls.get("no-cache") is not True:
            raw = await self.store.get(key)
            entry = decode(raw) if raw is not None else None
            max_age = controls.get("s-maxage")
            fresh = entry is not None and (max_age is None or entry.age() <= max_age)
            if entry is not None and fresh and (entry.kind == STREAM) == ctx.stream:
                ctx.model_group = group.name
                ctx.usage = entry.usage
                ctx.cache_hit = True
                ctx.response_headers["x-litellm-cache-key"] = digest
                return entry.replay() if ctx.stream else entry.data
        ctx.cache_miss = True
        if controls.get("no-store") is not True:
            ctx.put(PENDING, (key, float(controls.get("ttl") or settings.ttl)))
            ctx.response_wrapper = tap
        return None

    async def after_call(self, ctx: RequestContext) -> None:
        pending = ctx.get(PENDING)
        if pending is None or ctx.outcome != "success":
            return
        captured = ctx.get(CAPTURED)
        if isinstance(captured, bytes):
            kind, data = BODY, captured
        elif isinstance(captured, Recording):
            kind, data = STREAM, b"".join(captured.events)
        else:
            return
        if len(data) > MAX_ENTRY_BYTES:
            return
        key, ttl = pending
        await self.store.set(key, encode(kind, data, ctx.usage), ttl)

    async def stop(self) -> None:
        await self.store.close()

    def controls(self, ctx: RequestContext) -> JSONObject | None:
        """The request's ``cache`` object, checked (400 for bad values, 403 for controls this key may not use)."""
        options = ctx.options
        raw = options.get("cache") if options else None
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise invalid_request("'cache' must be an object, e.g. {\"no-cache\": true}", param="cache")
        for name, value in raw.items():
            expected = CONTROLS.get(name)
            if name == "namespace":
                if not isinstance(value, str) or not value:
                    raise invalid_request("cache.namespace must be a non-empty string", param="cache.namespace")
            elif expected is None:
                raise invalid_request(
                    f"unknown cache control '{name}'; known: namespace, {', '.join(CONTROLS)}", param="cache"
                )
            elif expected is bool and not isinstance(value, bool):
                raise invalid_request(f"cache.{name} must be true or false", param=f"cache.{name}")
            elif expected is not bool and not _seconds(value):
                raise invalid_request(f"cache.{name} must be a number of seconds", param=f"cache.{name}")
        allowed = allowed_controls(ctx)
        if allowed is not None:
            for name in raw:
                if name not in allowed:
                    raise ProxyError(
                        ErrorKind.PERMISSION,
                        f"this key may not use the cache control '{name}' (allowed: {', '.join(allowed) or 'none'})",
                        param="cache",
                        code="cache_control_not_allowed",
                    )
        return raw


def tap(ctx: RequestContext, result: bytes | AsyncGenerator[bytes, None]) -> bytes | AsyncGenerator[bytes, None]:
    """The gateway passes a miss's response through here (see core/gateway.py): keep it to store later."""
    if isinstance(result, bytes):
        ctx.put(CAPTURED, result)
        return result
    recording = Recording(result, [])
    ctx.put(CAPTURED, recording)
    return recording


def _seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def allowed_controls(ctx: RequestContext) -> list[str] | None:
    principal = ctx.principal
    auth = principal.auth if principal is not None else None
    if auth is None:
        return None
    allowed = auth.metadata.get("allowed_cache_controls")
    return [str(a) for a in allowed] if isinstance(allowed, list) else None


def build_store(settings: CacheSettings) -> CacheStore:
    if settings.kind == "redis":
        assert settings.redis_url is not None
        from proxyllm.cache.redis_store import RedisStore  # the Redis client loads only when used

        return RedisStore(settings.redis_url)
    return LocalStore(settings.max_entries)
