"""Rerank-only providers, as LiteLLM names them: ``cohere/<model>`` (Cohere's ``/v2/rerank``) and
``jina_ai/<model>`` (Jina's ``/v1/rerank``). The request and answer are Cohere's shape, which is also
what the proxy's ``/v1/rerank`` speaks, so the body passes through with only ``model`` changed
(providers/media.py). An OpenAI-compatible server that reranks (vLLM: ``hosted_vllm/``, or ``openai/``
with an ``api_base``) is called at ``{api_base}/rerank``. Other operations on these providers are
refused: a group mixing them with chat deployments routes chat to the others.
"""

from __future__ import annotations

from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.provider import register
from proxyllm.core.types import Operation
from proxyllm.core.upstream_http import client_timeout
from proxyllm.providers.openai import OpenAIProvider


@register("cohere")
class CohereProvider(OpenAIProvider):
    name = "cohere"
    default_api_base = "https://api.cohere.com"
    api_key_env = "COHERE_API_KEY"
    api_base_env = "COHERE_API_BASE"
    operations = frozenset({Operation.RERANK})
    rerank_path = "/v2/rerank"

    def url(self, dep: Deployment, operation: Operation) -> str:
        if operation is not Operation.RERANK:
            raise ProxyError(
                ErrorKind.NOT_IMPLEMENTED,
                f"proxyllm serves only rerank from provider '{self.name}' (model '{dep.model_name}')",
                param="model",
                code="provider_not_supported",
            )
        return dep.api_base + self.rerank_path

    async def list_models(self, api_base: str, api_key: str | None) -> list[str]:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"{self.name} models are named in the config")

    async def check_health(self, dep: Deployment) -> None:
        """A one-document rerank: the cheapest call that proves the address, the key and the model."""
        import orjson

        body = orjson.dumps({"model": dep.upstream_model, "query": "health", "documents": ["ok"], "top_n": 1})
        await self.http.request(
            "POST",
            self.url(dep, Operation.RERANK),
            body=body,
            headers=self.headers(dep),
            timeout=client_timeout(10, 5),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        )


@register("jina_ai")
class JinaProvider(CohereProvider):
    name = "jina_ai"
    default_api_base = "https://api.jina.ai/v1"
    api_key_env = "JINA_AI_API_KEY"
    api_base_env = "JINA_AI_API_BASE"
    rerank_path = "/rerank"
