"""Azure OpenAI: ``azure/<deployment>``.

The body is OpenAI's, so the OpenAI adapter's pass-through does the work; what differs is the address
(``{api_base}/openai/deployments/{deployment}/chat/completions?api-version=...``), the ``api-key``
header, and the errors: a prompt stopped by Azure's content filter is a 400 with code
``content_filter`` and becomes a CONTENT_POLICY error, so ``content_policy_fallbacks`` apply.
With ``api_version: v1`` (or an ``api_base`` ending in ``/openai/v1``) the newer v1 API is used,
where the deployment goes in the body's ``model``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.provider import register
from proxyllm.core.types import Operation
from proxyllm.core.upstream_http import JSON_HEADERS, client_timeout
from proxyllm.providers.openai import PATHS, OpenAIProvider
from proxyllm.providers.openai_errors import openai_error
from proxyllm.providers.responses import speaks_responses

DEFAULT_API_VERSION = "2024-10-21"  # the latest GA data-plane version when this was written
V1_VERSIONS = frozenset({"v1", "latest", "preview"})


def is_v1(dep: Deployment) -> bool:
    return dep.api_version in V1_VERSIONS or dep.api_base.endswith("/openai/v1")


def azure_url(dep: Deployment, operation: Operation) -> str:
    base = dep.api_base
    if is_v1(dep):
        base = base if base.endswith("/openai/v1") else base.removesuffix("/openai") + "/openai/v1"
        return base + PATHS[operation]
    version = dep.api_version or DEFAULT_API_VERSION
    if operation is Operation.RESPONSES:  # one endpoint per resource; the deployment is the body's model
        return f"{base.removesuffix('/openai')}/openai/responses?api-version={version}"
    deployment = quote(dep.upstream_model, safe="")
    return f"{base.removesuffix('/openai')}/openai/deployments/{deployment}{PATHS[operation]}?api-version={version}"


@register("azure")
class AzureProvider(OpenAIProvider):
    name = "azure"
    default_api_base = None  # type: ignore[assignment]  # no default: every Azure resource has its own
    api_key_env = "AZURE_API_KEY"
    api_base_env = "AZURE_API_BASE"

    def headers(self, dep: Deployment) -> dict[str, str]:
        headers = dict(JSON_HEADERS)
        if dep.api_key:
            headers["api-key"] = dep.api_key
        headers.update(dep.extra_headers)
        return headers

    def speaks_responses(self, dep: Deployment) -> bool:
        return speaks_responses(dep, default=True)

    def url(self, dep: Deployment, operation: Operation) -> str:
        return azure_url(dep, operation)

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
        return openai_error(status, raw, headers)

    async def list_models(self, api_base: str, api_key: str | None) -> list[str]:
        raise ProxyError(ErrorKind.INVALID_REQUEST, "Azure deployments are named in the config; they are not listed")

    async def check_health(self, dep: Deployment) -> None:
        """Azure lists base models, not deployments: check that the resource answers and takes the key."""
        if is_v1(dep):
            url = azure_url(dep, Operation.CHAT).removesuffix(PATHS[Operation.CHAT]) + "/models"
        else:
            version = dep.api_version or DEFAULT_API_VERSION
            url = f"{dep.api_base.removesuffix('/openai')}/openai/models?api-version={version}"
        await self.http.request(
            "GET",
            url,
            headers=self.headers(dep),
            timeout=client_timeout(10, 5),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        )
