"""Which deployments get the Responses API itself, and where it goes (no network)."""

from __future__ import annotations

from typing import Any

from proxyllm.core.context import NativeRequest, RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.provider import provider_class
from proxyllm.core.types import Operation
from proxyllm.core.upstream_http import UpstreamHTTP
from proxyllm.providers.azure import AzureProvider, azure_url
from proxyllm.providers.openai import OpenAIProvider
from proxyllm.providers.responses import API


def deployment(provider: Any, api_base: str, **info: Any) -> Deployment:
    return Deployment(
        id="d", model_name="m", provider=provider, upstream_model="up", api_base=api_base, model_info=info
    )


def responses_ctx() -> RequestContext:
    ctx = RequestContext(request_id="r", operation=Operation.RESPONSES, body={"model": "m", "messages": []})
    ctx.native = NativeRequest(API, {"model": "m", "input": []})
    return ctx


def test_who_speaks_responses() -> None:
    http = UpstreamHTTP()
    openai = OpenAIProvider(http)
    assert (
        openai.path_operation(deployment(openai, OpenAIProvider.default_api_base), responses_ctx())
        is Operation.RESPONSES
    )
    compatible = deployment(openai, "http://vllm:8000/v1")
    assert openai.path_operation(compatible, responses_ctx()) is Operation.CHAT
    flagged = deployment(openai, "http://vllm:8000/v1", supports_responses=True)
    assert openai.path_operation(flagged, responses_ctx()) is Operation.RESPONSES
    refused = deployment(openai, OpenAIProvider.default_api_base, supports_responses=False)
    assert openai.path_operation(refused, responses_ctx()) is Operation.CHAT
    azure = AzureProvider(http)
    assert azure.path_operation(deployment(azure, "https://r.openai.azure.com"), responses_ctx()) is Operation.RESPONSES
    groq_class = provider_class("groq")
    assert groq_class is not None
    groq = groq_class(http)
    assert isinstance(groq, OpenAIProvider)
    assert groq.path_operation(deployment(groq, groq.default_api_base or ""), responses_ctx()) is Operation.CHAT


def test_azure_responses_url() -> None:
    azure = AzureProvider(UpstreamHTTP())
    dep = deployment(azure, "https://r.openai.azure.com")
    dep.api_version = "2025-04-01-preview"
    assert (
        azure_url(dep, Operation.RESPONSES)
        == "https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    )
    v1 = deployment(azure, "https://r.openai.azure.com/openai/v1")
    assert azure_url(v1, Operation.RESPONSES) == "https://r.openai.azure.com/openai/v1/responses"


def test_flag_in_litellm_params() -> None:
    from proxyllm.config.loader import parse_config
    from proxyllm.server.runtime import Runtime

    config = parse_config(
        """
model_list:
  - model_name: local
    litellm_params: {model: ollama_chat/qwen3, api_base: "http://127.0.0.1:9", supports_responses: true}
  - model_name: plain
    litellm_params: {model: ollama_chat/qwen3, api_base: "http://127.0.0.1:9"}
"""
    )
    runtime = Runtime(config, env={"DATABASE_URL": "sqlite:///:memory:"})
    flags = {d.model_name: d.model_info.get("supports_responses") for d in runtime.deployments}
    assert flags == {"local": True, "plain": None}
