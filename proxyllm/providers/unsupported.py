"""A deployment whose provider proxyllm does not implement (``sagemaker/``, ``bedrock/``, ...).

LiteLLM configs routinely mix providers. Such an entry is loaded rather than stopping start-up: it is
listed with the reason (``/health``, ``/model/info``) and a call to it answers 501 naming the provider,
so the rest of the config serves, and fallbacks configured for its group still apply.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.provider import Provider
from proxyllm.core.upstream_http import UpstreamHTTP


class UnsupportedProvider(Provider):
    supported = False

    def __init__(self, http: UpstreamHTTP, provider: str) -> None:
        super().__init__(http)
        self.name = provider  # type: ignore[misc]  # one instance per unknown provider prefix

    def reason(self) -> str:
        return f"provider '{self.name}' is not implemented by proxyllm"

    def refusal(self, dep: Deployment) -> ProxyError:
        return ProxyError(
            ErrorKind.NOT_IMPLEMENTED,
            f"model '{dep.model_name}' is configured with provider '{self.name}' ({self.name}/{dep.upstream_model}), "
            "which proxyllm does not implement; see docs/providers.md for the providers it serves",
            param="model",
            code="provider_not_supported",
        )

    async def complete(self, dep: Deployment, ctx: RequestContext) -> bytes:
        raise self.refusal(dep)

    async def stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        raise self.refusal(dep)
        yield b""  # pragma: no cover  (makes this an async generator)

    async def check_health(self, dep: Deployment) -> None:
        raise self.refusal(dep)
