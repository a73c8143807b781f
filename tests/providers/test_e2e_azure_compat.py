"""``azure/<deployment>`` against a fake Azure OpenAI, and the OpenAI-compatible clouds against the OpenAI fake."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from proxyllm.config.loader import parse_config
from proxyllm.core.errors import StartupError
from proxyllm.server.runtime import Runtime
from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.azure_upstream import API_KEY, FILTER_WORD, FakeAzure
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
async def proxy(
    module_proxy_factory: Any, azure_upstream: FakeAzure, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    """One proxy for the module: every case is a request and its answer (the refusals are content policy, not
    counted towards a cooldown, or on a deployment of their own)."""
    oai = openai_upstream.api_base
    text = f"""
model_list:
  - model_name: azure-gpt
    litellm_params: {{model: azure/gpt-4o-prod, api_base: {azure_upstream.url}, api_version: "2025-04-01-preview"}}
  - model_name: azure-default-version
    litellm_params: {{model: azure/gpt-4o-prod, api_base: {azure_upstream.url}}}
  - model_name: azure-v1
    litellm_params: {{model: azure/gpt-4o-prod, api_base: {azure_upstream.url}/openai/v1}}
  - model_name: azure-embed
    litellm_params: {{model: azure/embed-prod, api_base: {azure_upstream.url}}}
  - model_name: azure-bad-key
    litellm_params: {{model: azure/gpt-4o-prod, api_base: {azure_upstream.url}, api_key: nope}}
  - model_name: llama3
    litellm_params: {{model: ollama_chat/llama3, api_base: {ollama_upstream.url}}}
  - model_name: groq
    litellm_params: {{model: groq/gpt-fake, api_base: {oai}}}
  - model_name: groq-lenient
    litellm_params: {{model: groq/gpt-fake, api_base: {oai}, drop_params: true}}
  - model_name: mistral
    litellm_params: {{model: mistral/gpt-fake, api_base: {oai}}}
  - model_name: fireworks
    litellm_params: {{model: fireworks_ai/gpt-fake, api_base: {oai}}}
litellm_settings:
  content_policy_fallbacks: [{{"azure-gpt": ["llama3"]}}]
router_settings: {{num_retries: 1}}
general_settings: {{master_key: {MASTER_KEY}}}
"""
    env = {"AZURE_API_KEY": API_KEY, "GROQ_API_KEY": "gsk-groq", "MISTRAL_API_KEY": "mk", "FIREWORKS_AI_API_KEY": "fw"}
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text, env=env)
    return server


@pytest.fixture
def client(proxy: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


async def test_azure_chat_url_version_and_key(client: openai.AsyncOpenAI, azure_upstream: FakeAzure) -> None:
    resp = await client.chat.completions.create(model="azure-gpt", messages=HI)
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    sent = azure_upstream.requests[-1]
    assert sent.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert sent.headers["api-key"] == API_KEY and "authorization" not in {k.lower() for k in sent.headers}
    assert azure_upstream.queries[-1] == {"api-version": "2025-04-01-preview"}
    await client.chat.completions.create(model="azure-default-version", messages=HI)
    assert azure_upstream.queries[-1] == {"api-version": "2024-10-21"}


async def test_azure_v1_api(client: openai.AsyncOpenAI, azure_upstream: FakeAzure) -> None:
    await client.chat.completions.create(model="azure-v1", messages=HI)
    sent = azure_upstream.requests[-1]
    assert sent.path == "/openai/v1/chat/completions" and sent.body["model"] == "gpt-4o-prod"


async def test_azure_stream_and_embeddings(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="azure-gpt", messages=HI, stream=True)
    assert (
        "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == "Hello from the fake upstream"
    )
    emb = await client.embeddings.create(model="azure-embed", input=["a", "b"], encoding_format="float")
    assert len(emb.data) == 2


async def test_azure_content_filter_is_content_policy(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="azure-default-version", messages=[{"role": "user", "content": FILTER_WORD}]
        )
    assert info.value.code == "content_filter"
    assert "content management policy" in info.value.message


async def test_azure_content_filter_falls_back(client: openai.AsyncOpenAI, azure_upstream: FakeAzure) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="azure-gpt", messages=[{"role": "user", "content": FILTER_WORD}]
    )
    assert raw.headers["x-litellm-model-group"] == "llama3"
    assert len(azure_upstream.requests) == 1, "a content-policy refusal is not retried on the same model"


async def test_azure_wrong_key_is_401(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="azure-bad-key", messages=HI)


async def test_compat_cloud_key_and_unsupported_params(client: openai.AsyncOpenAI, openai_upstream: FakeOpenAI) -> None:
    resp = await client.chat.completions.create(model="groq", messages=HI)
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert openai_upstream.requests[-1].headers["Authorization"] == "Bearer gsk-groq"
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="groq", messages=HI, logit_bias={"1": 1})
    assert info.value.code == "unsupported_params" and "groq" in info.value.message
    await client.chat.completions.create(model="groq-lenient", messages=HI, logit_bias={"1": 1}, n=1)
    assert "logit_bias" not in openai_upstream.requests[-1].body


async def test_mistral_renames_and_no_stream_options(client: openai.AsyncOpenAI, openai_upstream: FakeOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="mistral", messages=HI, seed=3, stream=True, stream_options={"include_usage": True}
    )
    assert [c async for c in stream]
    sent = openai_upstream.requests[-1].body
    assert sent["random_seed"] == 3 and "seed" not in sent and "stream_options" not in sent


async def test_fireworks_model_prefix(client: openai.AsyncOpenAI, openai_upstream: FakeOpenAI) -> None:
    await client.chat.completions.create(model="fireworks", messages=HI)
    assert openai_upstream.requests[-1].body["model"] == "accounts/fireworks/models/gpt-fake"


def test_hosted_vllm_needs_api_base() -> None:
    cfg = parse_config("model_list:\n  - model_name: v\n    litellm_params: {model: hosted_vllm/llama}\n")
    with pytest.raises(StartupError, match="api_base"):
        Runtime(cfg, env={})
    runtime = Runtime(cfg, env={"HOSTED_VLLM_API_BASE": "http://vllm:8000/v1", "HOSTED_VLLM_API_KEY": "k"})
    dep = runtime.deployments[0]
    assert (dep.api_base, dep.api_key, dep.provider.name) == ("http://vllm:8000/v1", "k", "hosted_vllm")
