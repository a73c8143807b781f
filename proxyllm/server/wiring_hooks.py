"""The request path's parts that are not billing's (server/billing_wiring.py has those): admission,
rate limits, the response cache and budgets, each built from the config and environment; and the
metrics, health checks and Ollama discovery around them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from proxyllm.accounts.writer import SpendWriter
from proxyllm.cache.hook import CacheHook
from proxyllm.cache.settings import cache_settings
from proxyllm.config.schema import DeploymentConfig, ProxyConfig
from proxyllm.core.admission import AdmissionHook, default_max_output_tokens
from proxyllm.core.deployment import Deployment
from proxyllm.core.deployment_table import DeploymentTable
from proxyllm.core.errors import StartupError
from proxyllm.core.hooks import Hook
from proxyllm.core.provider import Provider
from proxyllm.core.router import Router
from proxyllm.core.routing.health import HealthChecker
from proxyllm.limits.budget_hook import BudgetHook
from proxyllm.limits.budgets import SharedBudgets
from proxyllm.limits.hook import RateLimitHook
from proxyllm.limits.shared import SharedLimiter
from proxyllm.observability import Metrics
from proxyllm.server.discovery import ModelDiscovery, discovery_base
from proxyllm.state import redis_url
from proxyllm.state.scripts import Scripts

if TYPE_CHECKING:
    from proxyllm.billing.service import Billing


def admission_hook(router: Router, env: Mapping[str, str]) -> AdmissionHook:
    try:
        default_output = default_max_output_tokens(env)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    return AdmissionHook(router, default_output=default_output)


def rate_limit_hook(config: ProxyConfig, scripts: Scripts, router: Router, metrics: Metrics) -> RateLimitHook:
    return RateLimitHook(
        SharedLimiter(scripts),
        router,
        global_max_parallel_requests=config.general_settings.global_max_parallel_requests,
        on_reject=metrics.rejected,
    )


def cache_hooks(config: ProxyConfig, env: Mapping[str, str], router: Router) -> list[Hook]:
    """The response cache when ``litellm_settings.cache`` is on (none otherwise)."""
    ls, rs = config.litellm_settings, config.router_settings
    if not ls.cache:
        return []
    shared = redis_url(url=rs.redis_url, host=rs.redis_host, port=rs.redis_port, password=rs.redis_password, env=env)
    try:
        settings = cache_settings(ls.cache_params, shared_redis_url=shared)
    except ValueError as exc:
        raise StartupError(f"{config.source or 'config'}: litellm_settings.{exc}") from None
    return [CacheHook(settings, router)]


def budget_hook(spend: SpendWriter, limits: RateLimitHook, *, cached: bool, at_price: bool) -> BudgetHook:
    """Budgets; with Redis and no cache, this also checks the deferred rate limits in the same round trip."""
    return BudgetHook(spend, shared=SharedBudgets(limits, at_price=at_price) if not cached else None, at_price=at_price)


def build_metrics(router: Router, spend: SpendWriter, billing: Billing | None) -> Metrics:
    metrics = Metrics(
        known_model=lambda name: router.find(name) is not None,
        deployments=router.all_stats,
        queued_rows=lambda: spend.queued_rows,
    )
    spend.on_dead_letter = metrics.dead_letter
    if billing is not None:
        billing.on_low_balance = metrics.low_balance
    return metrics


def build_health_checker(config: ProxyConfig, router: Router) -> HealthChecker | None:
    """Background health checks of every deployment, when ``general_settings.background_health_checks``."""
    gs, rs = config.general_settings, config.router_settings
    if not gs.background_health_checks:
        return None
    return HealthChecker(router, interval=gs.health_check_interval, recheck=max(rs.cooldown_time, 5.0))


def build_discovery(
    table: DeploymentTable,
    build: Callable[[DeploymentConfig], Deployment],
    provider: Provider,
    env: Mapping[str, str],
) -> ModelDiscovery:
    """``make run`` without a config: serve what the local Ollama lists (server/discovery.py)."""
    return ModelDiscovery(table, build, provider, api_base=discovery_base(env), api_key=env.get("OLLAMA_API_KEY"))
