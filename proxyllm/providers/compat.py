"""OpenAI-compatible clouds, declared as data on the shared OpenAI adapter.

Each cloud is a row: where it lives, which environment variable holds its key, which OpenAI
parameters it refuses (a clear 400, or dropped with ``drop_params``), which it spells differently,
and whether it takes ``stream_options``. One class does the rest; adding a cloud is adding a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.provider import register
from proxyllm.providers.openai import OpenAIProvider
from proxyllm.providers.openai_errors import openai_error
from proxyllm.providers.responses import speaks_responses


@dataclass(frozen=True, slots=True)
class Cloud:
    name: str
    api_base: str | None  # None: the deployment must give api_base (or the base variable)
    key_env: str
    base_env: str | None = None
    unsupported: frozenset[str] = frozenset()
    renames: Mapping[str, str] = field(default_factory=dict)  # OpenAI name -> the cloud's name
    stream_options: bool = True  # accepts stream_options (to report usage on streams)
    model_prefix: str = ""  # added to model names that lack it


CLOUDS = (
    Cloud(
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        "GROQ_API_BASE",
        unsupported=frozenset({"n", "logprobs", "top_logprobs", "logit_bias"}),
    ),
    Cloud("together_ai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY", "TOGETHERAI_API_BASE"),
    Cloud(
        "deepseek",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        "DEEPSEEK_API_BASE",
        unsupported=frozenset({"n", "logit_bias"}),
    ),
    Cloud("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "OPENROUTER_API_BASE"),
    Cloud(
        "mistral",
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        "MISTRAL_API_BASE",
        unsupported=frozenset({"logit_bias", "logprobs", "top_logprobs", "user"}),
        renames={"seed": "random_seed", "max_completion_tokens": "max_tokens"},
        stream_options=False,
    ),
    Cloud("xai", "https://api.x.ai/v1", "XAI_API_KEY", "XAI_API_BASE", unsupported=frozenset({"logit_bias"})),
    Cloud(
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_AI_API_KEY",
        "FIREWORKS_AI_API_BASE",
        model_prefix="accounts/fireworks/models/",
    ),
    Cloud("hosted_vllm", None, "HOSTED_VLLM_API_KEY", "HOSTED_VLLM_API_BASE"),
)


def refuse_or_drop(payload: JSONObject, cloud: Cloud, *, drop: bool) -> JSONObject:
    """Remove the parameters the cloud refuses (``drop``) or answer a 400 naming the first one."""
    found = [k for k in cloud.unsupported if payload.get(k) is not None and not (k == "n" and payload[k] == 1)]
    if not found:
        return payload
    if drop:
        return {k: v for k, v in payload.items() if k not in found}
    name = sorted(found)[0]
    raise invalid_request(
        f"{cloud.name} does not support parameter '{name}'. Remove it, or set drop_params: true "
        "(in litellm_settings, the model's litellm_params, or the request) to drop it.",
        param=name,
        code="unsupported_params",
    )


def compat_body(cloud: Cloud, dep: Deployment, ctx: RequestContext, *, stream: bool) -> JSONObject:
    payload: JSONObject = {**dep.request_defaults, **ctx.body} if dep.request_defaults else dict(ctx.body)
    payload = refuse_or_drop(payload, cloud, drop=ctx.drop_params or bool(dep.drop_params))
    for ours, theirs in cloud.renames.items():
        if ours in payload:
            value = payload.pop(ours)
            payload.setdefault(theirs, value)
    model = dep.upstream_model
    if cloud.model_prefix and not model.startswith(cloud.model_prefix.split("/", 1)[0] + "/"):
        model = cloud.model_prefix + model
    payload["model"] = model
    if not stream or not cloud.stream_options:
        payload.pop("stream_options", None)
    elif not ctx.client_wants_usage:
        payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
    return payload


class CompatProvider(OpenAIProvider):
    """The OpenAI adapter with one cloud's rules applied to the outgoing body."""

    cloud: ClassVar[Cloud]

    def speaks_responses(self, dep: Deployment) -> bool:
        return speaks_responses(dep, default=False)

    def body(self, dep: Deployment, ctx: RequestContext, *, stream: bool = False) -> bytes:
        return orjson.dumps(compat_body(self.cloud, dep, ctx, stream=stream))

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
        return openai_error(status, raw, headers)


def declare(cloud: Cloud) -> type[CompatProvider]:
    title = "".join(part.title() for part in cloud.name.split("_"))
    attrs = {
        "name": cloud.name,
        "cloud": cloud,
        "default_api_base": cloud.api_base,
        "api_key_env": cloud.key_env,
        "api_base_env": cloud.base_env,
        "__doc__": f"``{cloud.name}/<model>``: OpenAI-compatible, with {cloud.name}'s parameter rules.",
    }
    cls: type[CompatProvider] = type(f"{title}Provider", (CompatProvider,), attrs)
    return register(cloud.name)(cls)


PROVIDERS = {cloud.name: declare(cloud) for cloud in CLOUDS}
