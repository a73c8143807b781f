"""From the config's model entries to Deployments, wildcard routes and the router's policy."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal

import proxyllm.providers  # noqa: F401  (every adapter registers itself)
from proxyllm.config.schema import REQUEST_DEFAULT_PARAMS, DeploymentConfig, ProxyConfig
from proxyllm.core import prices
from proxyllm.core.deployment import DEFAULT_TIMEOUT, Deployment, deployment_id
from proxyllm.core.errors import ErrorKind, ProxyError, StartupError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.pricing import compute_settings
from proxyllm.core.provider import Provider, provider_class, provider_names
from proxyllm.core.router import RouterPolicy
from proxyllm.core.routing.policy import parse_retry_policy
from proxyllm.core.routing.strategies import strategy_for
from proxyllm.core.routing.wildcards import WildcardRoute
from proxyllm.core.units import unit_settings
from proxyllm.core.upstream_http import UpstreamHTTP
from proxyllm.providers.unsupported import UnsupportedProvider
from proxyllm.tailnet import proxy_for

log = logging.getLogger("proxyllm")


class DeploymentFactory:
    """Builds deployments from config entries; one provider instance per provider, on the shared client."""

    def __init__(self, config: ProxyConfig, env: Mapping[str, str], http: UpstreamHTTP) -> None:
        self.config = config
        self.env = env
        self.http = http
        self._providers: dict[str, Provider] = {}

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            cls = provider_class(name)
            if cls is None:
                log.warning(
                    "provider '%s' is not implemented by proxyllm: its deployments are listed as unavailable and "
                    "answer 501 (implemented: %s)",
                    name,
                    ", ".join(provider_names()),
                )
                self._providers[name] = UnsupportedProvider(self.http, name)
            else:
                self._providers[name] = cls(self.http)
        return self._providers[name]

    def config_deployments(self) -> list[Deployment]:
        """Every concrete (non-wildcard) entry of the config, or one StartupError naming every entry at fault."""
        built: list[Deployment] = []
        problems: list[str] = []
        for index, entry in enumerate(self.config.model_list):
            if "*" in entry.model_name:
                continue
            try:
                built.append(self.build_deployment(entry, index))
            except StartupError as exc:
                problems.append(str(exc))
        if len(problems) == 1:
            raise StartupError(problems[0])
        if problems:
            raise StartupError(f"{len(problems)} problems in model_list:\n  " + "\n  ".join(problems))
        return built

    def wildcard_routes(self) -> list[WildcardRoute]:
        return [self.wildcard_route(d, i) for i, d in enumerate(self.config.model_list) if "*" in d.model_name]

    def router_policy(self) -> RouterPolicy:
        ls, rs = self.config.litellm_settings, self.config.router_settings
        num_retries = rs.num_retries if rs.num_retries is not None else ls.num_retries
        max_fallbacks = rs.max_fallbacks if rs.max_fallbacks is not None else ls.max_fallbacks
        args = rs.routing_strategy_args
        try:
            strategy_for(rs.routing_strategy)
            retry_policy = parse_retry_policy(rs.retry_policy)
            exploration = float(args.get("exploration", 0.05))
            latency_buffer = float(args.get("lowest_latency_buffer", 0.0))
        except (TypeError, ValueError) as exc:
            raise StartupError(f"{self.config.source or 'config'}: router_settings: {exc}") from None
        return RouterPolicy(
            num_retries=2 if num_retries is None else num_retries,
            fallbacks=fallback_map(ls.fallbacks, rs.fallbacks),
            context_window_fallbacks=fallback_map(ls.context_window_fallbacks, rs.context_window_fallbacks),
            content_policy_fallbacks=fallback_map(ls.content_policy_fallbacks, rs.content_policy_fallbacks),
            default_fallbacks=[*ls.default_fallbacks, *rs.default_fallbacks],
            max_fallbacks=5 if max_fallbacks is None else max_fallbacks,
            aliases=dict(rs.model_group_alias),
            retry_policy=retry_policy,
            max_retry_wait=rs.max_retry_wait,
            routing_strategy=rs.routing_strategy,
            tag_filtering=rs.enable_tag_filtering,
            allowed_fails=rs.allowed_fails,
            cooldown_time=rs.cooldown_time,
            disable_cooldowns=rs.disable_cooldowns,
            exploration=exploration,
            latency_buffer=latency_buffer,
            pre_call_checks=rs.enable_pre_call_checks,
        )

    def wildcard_route(self, entry: DeploymentConfig, index: int) -> WildcardRoute:
        """A model_name with a ``*`` serves every name it matches (see core/routing/wildcards.py)."""
        where = f"{self.config.source or 'config'}: model_list[{index}] (model_name {entry.model_name!r})"
        if entry.model_name.count("*") != 1:
            raise StartupError(f"{where}: a wildcard model_name has exactly one '*'")
        template = entry.litellm_params.model
        prefix, slash, _ = template.partition("/")
        if slash and "*" not in prefix:
            try:
                self.provider(prefix)
            except StartupError as exc:
                raise StartupError(f"{where}: litellm_params.model {template!r}: {exc}") from None

        def build(model: str, star: str) -> Deployment:
            resolved = template.replace("*", star)
            provider, slash, _ = resolved.partition("/")
            if slash and provider_class(provider) is None and "*" in prefix:
                raise ProxyError(
                    ErrorKind.NOT_FOUND,
                    f"model '{model}' is not served by this proxy: unknown provider '{provider}'",
                    param="model",
                    code="model_not_found",
                )
            concrete = entry.model_copy(
                update={
                    "model_name": model,
                    "litellm_params": entry.litellm_params.model_copy(update={"model": resolved}),
                    "model_info": entry.model_info.model_copy(update={"id": None}),
                }
            )
            try:
                return self.build_deployment(concrete, index)
            except StartupError as exc:
                log.warning("wildcard entry %r cannot serve %r: %s", entry.model_name, model, exc)
                raise ProxyError(
                    ErrorKind.NOT_FOUND,
                    f"model '{model}' is not served by this proxy",
                    param="model",
                    code="model_not_found",
                ) from None

        return WildcardRoute(entry.model_name, build)

    def build_deployment(self, entry: DeploymentConfig, index: int = 0) -> Deployment:
        params = entry.litellm_params
        where = f"{self.config.source or 'config'}: model_list[{index}] (model_name {entry.model_name!r})"
        prefix, _, upstream_model = params.model.partition("/")
        if not upstream_model:
            prefix, upstream_model = "openai", params.model  # LiteLLM treats bare names as OpenAI models
        try:
            provider = self.provider(prefix)
        except StartupError as exc:
            raise StartupError(f"{where}: litellm_params.model {params.model!r}: {exc}") from None
        api_base = params.api_base or (self.env.get(provider.api_base_env) if provider.api_base_env else None)
        api_base = (api_base or provider.default_api_base or "").rstrip("/")
        if not api_base and provider.supported:
            raise StartupError(f"{where}: litellm_params.api_base is required for provider '{provider.name}'")
        api_key = params.api_key or (self.env.get(provider.api_key_env) if provider.api_key_env else None)
        rs, ls = self.config.router_settings, self.config.litellm_settings
        timeout = params.timeout or rs.timeout or ls.request_timeout or DEFAULT_TIMEOUT
        extras = params.model_extra or {}
        input_price, output_price = params.input_cost_per_token, params.output_cost_per_token
        info = entry.model_info
        cache_read = _first(params.cache_read_input_token_cost, info.cache_read_input_token_cost)
        cache_creation = _first(params.cache_creation_input_token_cost, info.cache_creation_input_token_cost)
        if input_price is None and output_price is None:
            listed_name = info.base_model or upstream_model
            listed = prices.lookup(provider.name, listed_name)
            if listed is not None:
                input_price, output_price = listed
                listed_cache = prices.lookup_cache(provider.name, listed_name) or (None, None)
                cache_read = _first(cache_read, listed_cache[0])
                cache_creation = _first(cache_creation, listed_cache[1])
        try:
            compute = compute_settings(extras, where)
            unit_prices = unit_settings(extras, entry.model_info.model_dump(exclude_none=True), where)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        raw_params = params.model_dump(mode="json", exclude_none=True)
        return Deployment(
            id=entry.model_info.id or deployment_id(entry.model_name, raw_params),
            model_name=entry.model_name,
            provider=provider,
            upstream_model=upstream_model,
            api_base=api_base,
            api_key=api_key,
            api_version=params.api_version,
            weight=params.weight,
            timeout=timeout,
            stream_timeout=params.stream_timeout or rs.stream_timeout or timeout,
            stream_idle_timeout=params.stream_idle_timeout or rs.stream_idle_timeout or min(timeout, 120.0),
            connect_timeout=min(params.connect_timeout or 10.0, timeout),
            max_retries=params.max_retries if params.max_retries is not None else _whole(extras.get("num_retries")),
            rpm=params.rpm,
            tpm=params.tpm,
            input_cost_per_token=input_price,
            output_cost_per_token=output_price,
            cache_read_input_token_cost=cache_read,
            cache_creation_input_token_cost=cache_creation,
            drop_params=params.drop_params if params.drop_params is not None else ls.drop_params,
            proxy_url=proxy_for(api_base, params.proxy, self.env),
            extra_headers=dict(params.extra_headers or {}),
            request_defaults={k: v for k, v in extras.items() if k in REQUEST_DEFAULT_PARAMS},
            model_info=model_info(entry.model_info.model_dump(exclude_none=True), extras),
            region=extras["region_name"] if isinstance(extras.get("region_name"), str) else None,
            tags=frozenset(t for t in extras.get("tags") or () if isinstance(t, str)),
            unit_prices=unit_prices,
            **compute,
        )


def model_info(info: JSONObject, params_extra: JSONObject) -> JSONObject:
    """The deployment's model_info; ``supports_responses`` may also be given in litellm_params."""
    flag = params_extra.get("supports_responses")
    if isinstance(flag, bool) and "supports_responses" not in info:
        info["supports_responses"] = flag
    return info


def _first(*values: Decimal | None) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def _whole(value: object) -> int | None:
    """A per-model ``num_retries`` (LiteLLM's litellm_params key), when it is a sensible count."""
    return value if type(value) is int and 0 <= value <= 10 else None


def fallback_map(*lists: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    """LiteLLM's ``[{group: [fallback, ...]}, ...]`` lists, merged into one mapping."""
    merged: dict[str, list[str]] = {}
    for entries in lists:
        for entry in entries:
            for group, targets in entry.items():
                merged.setdefault(group, []).extend(targets)
    return merged
