"""The OpenAI-compatible clouds as data, Azure's URLs, and OpenAI-format error bodies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxyllm.config.loader import parse_config
from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.provider import provider_class
from proxyllm.core.types import Operation
from proxyllm.providers.azure import azure_url
from proxyllm.providers.compat import CLOUDS, PROVIDERS, compat_body
from proxyllm.providers.openai_errors import openai_error
from proxyllm.server.runtime import Runtime
from tests.providers.conftest import fixture

EXPECTED_BASES = {
    "groq": "https://api.groq.com/openai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "mistral": "https://api.mistral.ai/v1",
    "xai": "https://api.x.ai/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "hosted_vllm": None,
}


def test_every_cloud_is_registered_with_its_base_and_key() -> None:
    assert {c.name: c.api_base for c in CLOUDS} == EXPECTED_BASES
    for cloud in CLOUDS:
        cls = provider_class(cloud.name)
        assert cls is PROVIDERS[cloud.name] and cls.name == cloud.name
        assert cls.api_key_env == cloud.key_env and cls.api_key_env.endswith("_API_KEY")


def test_key_comes_from_litellm_params_or_the_environment() -> None:
    cfg = parse_config(
        """
model_list:
  - model_name: a
    litellm_params: {model: deepseek/deepseek-chat}
  - model_name: b
    litellm_params: {model: deepseek/deepseek-chat, api_key: sk-own}
"""
    )
    runtime = Runtime(cfg, env={"DEEPSEEK_API_KEY": "sk-env"})
    assert [(d.api_base, d.api_key) for d in runtime.deployments] == [
        ("https://api.deepseek.com/v1", "sk-env"),
        ("https://api.deepseek.com/v1", "sk-own"),
    ]


def _ctx(body: dict[str, Any]) -> RequestContext:
    return RequestContext(request_id="r", operation=Operation.CHAT, body=body)


def _dep(cloud: str, model: str = "m") -> Any:
    cfg = parse_config(
        f"model_list:\n  - model_name: x\n    litellm_params: {{model: {cloud}/{model}, api_base: http://h}}\n"
    )
    return Runtime(cfg, env={}).deployments[0]


def test_compat_body_rules() -> None:
    groq = next(c for c in CLOUDS if c.name == "groq")
    body = {"model": "x", "messages": [], "n": 1, "stream": True}
    sent = compat_body(groq, _dep("groq"), _ctx(body), stream=True)
    assert sent["stream_options"] == {"include_usage": True} and sent["n"] == 1
    with pytest.raises(ProxyError) as info:
        compat_body(groq, _dep("groq"), _ctx({**body, "n": 2}), stream=True)
    assert info.value.param == "n" and info.value.code == "unsupported_params"
    ctx = _ctx({**body, "n": 2, "top_logprobs": 2})
    ctx.drop_params = True
    assert "n" not in compat_body(groq, _dep("groq"), ctx, stream=False)
    fireworks = next(c for c in CLOUDS if c.name == "fireworks_ai")
    named = compat_body(fireworks, _dep("fireworks_ai", "accounts/me/models/x"), _ctx(body), stream=False)
    assert named["model"] == "accounts/me/models/x", "an account path is kept as given"


@pytest.mark.parametrize(
    ("api_base", "version", "url"),
    [
        (
            "https://r.openai.azure.com",
            None,
            "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
        ),
        (
            "https://r.openai.azure.com/openai",
            "2025-01-01-preview",
            "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2025-01-01-preview",
        ),
        ("https://r.openai.azure.com", "v1", "https://r.openai.azure.com/openai/v1/chat/completions"),
        ("https://r.openai.azure.com/openai/v1", None, "https://r.openai.azure.com/openai/v1/chat/completions"),
    ],
)
def test_azure_urls(api_base: str, version: str | None, url: str) -> None:
    extra = f", api_version: '{version}'" if version else ""
    cfg = parse_config(
        f"model_list:\n  - model_name: x\n    litellm_params: {{model: azure/d, api_base: '{api_base}'{extra}}}\n"
    )
    dep = Runtime(cfg, env={}).deployments[0]
    assert azure_url(dep, Operation.CHAT) == url


@pytest.mark.parametrize("case", fixture("azure_errors.json")["cases"], ids=lambda c: f"{c['status']}-{c['kind']}")
def test_openai_format_errors(case: dict[str, Any]) -> None:
    err = openai_error(case["status"], orjson.dumps(case["body"]), case["headers"])
    assert err.kind is ErrorKind[case["kind"]]
    assert err.code == case["code"]
    assert err.status == case["status"]
    if "retry_after" in case:
        assert err.retry_after == case["retry_after"]
    assert err.retryable is (err.kind is ErrorKind.RATE_LIMIT)
