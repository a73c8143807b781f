"""A deployment: one upstream model behind a model group, with its own address, key and limits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import orjson

from proxyllm.core.jsontypes import JSONObject

if TYPE_CHECKING:
    import aiohttp

    from proxyllm.core.provider import Provider

DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_STREAM_IDLE_TIMEOUT = 120.0


@dataclass(slots=True, eq=False)
class Deployment:
    id: str
    model_name: str  # the model group clients ask for
    provider: Provider
    upstream_model: str  # the name the upstream knows
    api_base: str
    api_key: str | None = None
    api_version: str | None = None
    weight: float = 1.0
    timeout: float = DEFAULT_TIMEOUT
    stream_timeout: float = DEFAULT_TIMEOUT
    stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    cache_read_input_token_cost: Decimal | None = None  # prompt tokens read from a prompt cache
    cache_creation_input_token_cost: Decimal | None = None  # prompt tokens written to a prompt cache
    input_cost_per_second: Decimal | None = None  # compute-time prices (LiteLLM's names)
    output_cost_per_second: Decimal | None = None
    compute_time: str = "sum"  # Ollama's seconds: "sum" of its phases, or "total" (total_duration)
    exclude_load_time: bool = False  # a cold start (load_duration) is not charged
    unit_prices: dict[str, Decimal] = field(default_factory=dict)  # per image/character/query (core/units.py)
    drop_params: bool | None = None
    proxy_url: str | None = None  # e.g. tailscaled's HTTP proxy for tailnet hosts
    extra_headers: dict[str, str] = field(default_factory=dict)
    request_defaults: JSONObject = field(default_factory=dict)
    model_info: JSONObject = field(default_factory=dict)
    region: str | None = None  # litellm_params.region_name (reported as x-litellm-model-region)
    tags: frozenset[str] = frozenset()  # litellm_params.tags, for tag routing
    in_flight: int = 0
    client_timeout: aiohttp.ClientTimeout | None = None  # for non-streaming calls, built on first use

    def describe(self) -> str:
        """For logs: the address without the credentials it may carry."""
        from proxyllm.core.masking import mask_url

        return f"{self.provider.name}/{self.upstream_model} at {mask_url(self.api_base)} (id {self.id})"

    def public_info(self) -> JSONObject:
        """What an admin may see about this deployment: never the key, nor credentials in the URL."""
        from proxyllm.core.masking import mask_url

        return {
            "model_name": self.model_name,
            "model_id": self.id,
            "provider": self.provider.name,
            "model": f"{self.provider.name}/{self.upstream_model}",
            "api_base": mask_url(self.api_base),
            "api_key": mask_secret(self.api_key),
            **(
                {"available": False, "reason": self.provider.reason()}
                if not getattr(self.provider, "supported", True)
                else {}
            ),
        }


def deployment_id(model_name: str, params: JSONObject) -> str:
    """Stable across restarts and replicas: derived from the entry itself."""
    blob = orjson.dumps({"model_name": model_name, "params": params}, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(blob).hexdigest()[:32]


def mask_secret(secret: str | None) -> str | None:
    if not secret:
        return None
    if len(secret) <= 8:
        return "****"
    return f"{secret[:3]}****{secret[-2:]}"
