"""Typed shape of a LiteLLM-style ``config.yaml``.

Each section keeps unknown keys (``extra="allow"``) so an existing LiteLLM config loads; the loader
warns once for every key no part of the proxy reads.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from proxyllm.core.jsontypes import JSONObject, JSONValue


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def unknown_keys(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


class LitellmParams(_Section):
    model: str
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    stream_idle_timeout: float | None = Field(default=None, gt=0)
    connect_timeout: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, gt=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    input_cost_per_token: Decimal | None = Field(default=None, ge=0)
    output_cost_per_token: Decimal | None = Field(default=None, ge=0)
    cache_read_input_token_cost: Decimal | None = Field(default=None, ge=0)
    cache_creation_input_token_cost: Decimal | None = Field(default=None, ge=0)
    drop_params: bool | None = None
    proxy: str | bool | None = None
    extra_headers: dict[str, str] | None = None

    @field_validator("model")
    @classmethod
    def _model_has_provider(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class ModelInfo(_Section):
    id: str | None = None
    mode: str | None = None
    base_model: str | None = None
    # LiteLLM also takes the prompt-cache prices here (litellm_params wins when both are set)
    cache_read_input_token_cost: Decimal | None = Field(default=None, ge=0)
    cache_creation_input_token_cost: Decimal | None = Field(default=None, ge=0)


class DeploymentConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    model_name: str = Field(min_length=1)
    litellm_params: LitellmParams
    model_info: ModelInfo = Field(default_factory=ModelInfo)


FallbackList = list[dict[str, list[str]]]


class CacheParams(_Section):
    """``litellm_settings.cache_params``: the response cache (see proxyllm/cache)."""

    type: Literal["local", "redis"] | None = None  # None: redis when one is configured, else local
    host: str | None = None
    port: int | None = Field(default=None, gt=0)
    password: str | None = None
    url: str | None = None
    namespace: str | None = None
    ttl: float | None = Field(default=None, gt=0)
    supported_call_types: list[str] | None = None
    mode: Literal["default_on", "default_off"] = "default_on"
    max_size_in_memory: int = Field(default=1000, ge=1)


class LitellmSettings(_Section):
    drop_params: bool = False
    num_retries: int | None = Field(default=None, ge=0)
    request_timeout: float | None = Field(default=None, gt=0)
    fallbacks: FallbackList = Field(default_factory=list)
    context_window_fallbacks: FallbackList = Field(default_factory=list)
    content_policy_fallbacks: FallbackList = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)
    max_fallbacks: int | None = Field(default=None, ge=0)
    set_verbose: bool = False
    json_logs: bool = False
    cache: bool = False
    cache_params: CacheParams = Field(default_factory=CacheParams)
    require_auth_for_metrics_endpoint: bool = False
    callbacks: list[str] = Field(default_factory=list)  # "otel": OpenTelemetry traces (observability/tracing.py)


class RouterSettings(_Section):
    routing_strategy: str = "simple-shuffle"
    num_retries: int | None = Field(default=None, ge=0)
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    stream_idle_timeout: float | None = Field(default=None, gt=0)
    retry_after: float = Field(default=0.0, ge=0)
    max_retry_wait: float = Field(default=10.0, ge=0)
    model_group_alias: dict[str, str] = Field(default_factory=dict)
    # Cooldowns: this many failures within a minute take a deployment out for cooldown_time seconds.
    allowed_fails: int = Field(default=3, ge=0)
    cooldown_time: float = Field(default=5.0, ge=0)
    disable_cooldowns: bool = False
    fallbacks: FallbackList = Field(default_factory=list)
    context_window_fallbacks: FallbackList = Field(default_factory=list)
    content_policy_fallbacks: FallbackList = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)
    max_fallbacks: int | None = Field(default=None, ge=0)
    retry_policy: dict[str, int] = Field(default_factory=dict)  # LiteLLM names, e.g. RateLimitErrorRetries
    routing_strategy_args: JSONObject = Field(default_factory=dict)
    enable_pre_call_checks: bool = False
    enable_tag_filtering: bool = False  # route by deployment tags (litellm_params.tags) and request tags
    # Shared state across replicas (else REDIS_URL / REDIS_HOST from the environment).
    redis_url: str | None = None
    redis_host: str | None = None
    redis_port: int | None = Field(default=None, gt=0)
    redis_password: str | None = None
    redis_namespace: str = Field(default="proxyllm", min_length=1)


class GeneralSettings(_Section):
    master_key: str | None = None
    database_url: str | None = None
    max_request_size_mb: float = Field(default=10.0, gt=0)
    global_max_parallel_requests: int | None = Field(default=None, ge=1)
    background_health_checks: bool = False
    # /health/readiness is 503 while no model is served, unless models are only added at run time.
    allow_no_models: bool = False
    health_check_interval: float = Field(default=300.0, gt=0)
    # Spend logs and spend counters are written in batches this often (LiteLLM's name; its default is 10 s).
    proxy_batch_write_at: float = Field(default=1.0, gt=0, le=3600)
    # Operator controls (proxyllm/ops): models in the database, IP allowlist, client address behind proxies.
    store_model_in_db: bool = False
    allowed_ips: list[str] | None = None
    trusted_proxies: list[str] = Field(default_factory=list)
    client_ip_header: str = Field(default="x-forwarded-for", min_length=1)
    # Security (proxyllm/server/bodylimit.py, proxyllm/accounts/throttle.py, proxyllm/ops/model_store.py).
    max_admin_request_size_kb: float = Field(default=1024.0, gt=0)  # admin, webhook and dashboard routes
    max_unauthenticated_request_size_kb: float = Field(default=64.0, gt=0)  # callers that send no credential
    auth_failure_limit: int = Field(default=20, ge=1)  # failed authentications per client IP / key prefix ...
    auth_failure_window: float = Field(default=60.0, gt=0)  # ... within this many seconds, then 429
    stored_models_env: str = Field(default="restricted", pattern="^(restricted|off|any)$")
    stored_models_env_denylist: list[str] = Field(default_factory=list)  # more names refused to stored models
    health_probe_cache_seconds: float = Field(default=10.0, ge=0)
    # Stored responses of /v1/responses: kept this many days (None: until deleted).
    responses_retention_days: float | None = Field(default=30.0, gt=0)


class BillingConfig(_Section):
    """``billing``: how customers are charged (the rest of billing is set by the environment, see
    docs/money-path.md and docs/reselling.md)."""

    # Key, user and team budgets count the customer's price instead of the operator's cost
    # (None: PROXYLLM_BUDGETS_AT_PRICE decides, off by default).
    budgets_at_price: bool | None = None


class ProxyConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    model_list: list[DeploymentConfig] = Field(default_factory=list)
    litellm_settings: LitellmSettings = Field(default_factory=LitellmSettings)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    billing: BillingConfig = Field(default_factory=BillingConfig)
    environment_variables: JSONObject = Field(default_factory=dict)
    source: str | None = Field(default=None, exclude=True)

    @field_validator("model_list", mode="before")
    @classmethod
    def _none_is_empty(cls, value: JSONValue) -> JSONValue:
        return [] if value is None else value


# OpenAI request parameters that may be set in litellm_params as per-deployment defaults.
REQUEST_DEFAULT_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "response_format",
        "reasoning_effort",
    }
)
