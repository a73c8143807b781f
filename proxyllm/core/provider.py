"""What a provider adapter is, and the registry the core finds adapters in.

An adapter is pure translation functions (in its own module) plus this thin I/O class on the shared
HTTP client. The core only sees ``complete`` / ``stream`` / ``list_models`` / ``check_health``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import ClassVar, TypeVar

import aiohttp

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.types import TEXT, Operation
from proxyllm.core.upstream_http import UpstreamHTTP, client_timeout, default_error


class Provider:
    name: ClassVar[str]
    default_api_base: ClassVar[str | None] = None
    api_key_env: ClassVar[str | None] = None
    api_base_env: ClassVar[str | None] = None
    operations: ClassVar[frozenset[Operation]] = TEXT  # media operations only where a provider says so
    supported: ClassVar[bool] = True  # False only for providers proxyllm does not implement

    def __init__(self, http: UpstreamHTTP) -> None:
        self.http = http

    async def complete(self, dep: Deployment, ctx: RequestContext) -> bytes:
        """Run a non-streaming call; return the OpenAI-format body and set ``ctx.usage``."""
        raise NotImplementedError

    def stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        """Yield OpenAI SSE events (``data: ...\\n\\n``) ending with ``data: [DONE]``; set ``ctx.usage``.

        Raise ProxyError on failure; the core decides whether that can still be retried.
        """
        raise NotImplementedError

    async def list_models(self, api_base: str, api_key: str | None) -> list[str]:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"{self.name} cannot list its models")

    async def check_health(self, dep: Deployment) -> None:
        """Raise ProxyError when the deployment cannot serve."""
        raise NotImplementedError

    def reason(self) -> str | None:
        """Why this provider cannot serve at all (None when it can)."""
        return None

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
        return default_error(status, raw, headers)

    def unsupported(self, dep: Deployment, ctx: RequestContext) -> ProxyError:
        return ProxyError(
            ErrorKind.INVALID_REQUEST,
            f"model '{ctx.model}' ({self.name}) does not support {ctx.operation.value} requests",
        )

    @staticmethod
    def call_timeout(dep: Deployment, ctx: RequestContext) -> aiohttp.ClientTimeout:
        if ctx.timeout is None:  # the common case: the deployment's own, built once
            timeout: aiohttp.ClientTimeout | None = dep.client_timeout
            if timeout is None:
                timeout = dep.client_timeout = client_timeout(dep.timeout, min(dep.connect_timeout, dep.timeout))
            return timeout
        return client_timeout(ctx.timeout, min(dep.connect_timeout, ctx.timeout))

    @staticmethod
    def stream_connect_timeout(dep: Deployment, ctx: RequestContext) -> aiohttp.ClientTimeout:
        # First-chunk and idle timeouts are enforced by the router around the event iterator.
        return client_timeout(None, dep.connect_timeout)


P = TypeVar("P", bound=type[Provider])
_REGISTRY: dict[str, type[Provider]] = {}


def register(*names: str) -> Callable[[P], P]:
    def add(cls: P) -> P:
        for name in names:
            _REGISTRY[name] = cls
        return cls

    return add


def provider_class(name: str) -> type[Provider] | None:
    return _REGISTRY.get(name)


def provider_names() -> list[str]:
    return sorted(_REGISTRY)
