"""Span attributes of a model call, by OpenTelemetry's GenAI semantic conventions (observability/tracing.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from proxyllm.core.deployment import Deployment
from proxyllm.core.jsontypes import JSONObject

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue

    Attributes = dict[str, AttributeValue]  # what a span accepts as attributes

# gen_ai.provider.name values of the semantic conventions, where they differ from the provider's name here.
PROVIDERS = {
    "ollama_chat": "ollama",
    "azure": "azure.ai.openai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "together_ai": "together_ai",
}


def request_attributes(body: JSONObject) -> Attributes:
    """The request's sampling settings, by their gen_ai.request.* names."""
    out: Attributes = {}
    for name, attribute in (
        ("max_tokens", "gen_ai.request.max_tokens"),
        ("max_completion_tokens", "gen_ai.request.max_tokens"),
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
        ("seed", "gen_ai.request.seed"),
    ):
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[attribute] = value
    return out


def deployment_attributes(dep: Deployment) -> Attributes:
    """The provider, by the conventions' names."""
    provider = PROVIDERS.get(dep.provider.name, dep.provider.name)
    return {"gen_ai.provider.name": provider, "gen_ai.system": provider}


def server_attributes(api_base: str) -> Attributes:
    """server.address and server.port of the upstream."""
    try:
        parts = urlsplit(api_base)
        port = parts.port
    except ValueError:
        return {}
    out: Attributes = {}
    if parts.hostname:
        out["server.address"] = parts.hostname
    if port is not None:
        out["server.port"] = port
    elif parts.scheme in ("http", "https"):
        out["server.port"] = 443 if parts.scheme == "https" else 80
    return out
