"""Everything one proxy process runs on, built from the config: providers, router, gateway, auth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from proxyllm import __version__
from proxyllm.accounts.cache import KeyCache
from proxyllm.accounts.hooks import BudgetHook, SpendLogHook
from proxyllm.accounts.invalidation import KeyInvalidations
from proxyllm.accounts.records import ALL_MODELS
from proxyllm.accounts.writer import SpendWriter
from proxyllm.billing.wiring import billing_from_env, billing_hooks
from proxyllm.cache.hook import CacheHook
from proxyllm.cache.settings import cache_settings
from proxyllm.config.schema import REQUEST_DEFAULT_PARAMS, DeploymentConfig, ProxyConfig
from proxyllm.core.deployment import DEFAULT_TIMEOUT, Deployment, deployment_id
from proxyllm.core.gateway import Gateway
from proxyllm.core.hooks import Hook
from proxyllm.core.router import Router, RouterPolicy
from proxyllm.core.routing.health import HealthChecker
from proxyllm.core.routing.policy import parse_retry_policy
from proxyllm.core.routing.strategies import strategy_for
from proxyllm.core.routing.wildcards import WildcardRoute
from proxyllm.db import Database, resolve_database_url
from proxyllm.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.limits.budgets import SharedBudgets
from proxyllm.limits.hook import RateLimitHook
from proxyllm.limits.shared import SharedLimiter
from proxyllm.observability import Metrics, ObservabilityHook
from proxyllm.ops.controls import OperatorControls
from proxyllm.providers import Provider, provider_class, provider_names
from proxyllm.providers.http import UpstreamHTTP
from proxyllm.server.auth import Authenticator, AuthHook
from proxyllm.state import redis_url, shared_state
from proxyllm.state.scripts import Scripts
from proxyllm.tailnet import TailnetCheck, proxy_for

log = logging.getLogger("proxyllm")
DISCOVERY_INTERVAL = 30.0
ReadinessCheck = Callable[[], Awaitable[tuple[str, dict[str, Any]]]]


class StartupError(Exception):
    """The proxy cannot start with this configuration."""


class Runtime:
    def __init__(
        self,
        config: ProxyConfig,
        *,
        discover_ollama: bool = False,
        env: Mapping[str, str] = os.environ,
        extra_hooks: list[Hook] | None = None,
    ) -> None:
        self.config = config
        self.env = env
        self.discover_ollama = discover_ollama
        self.http = UpstreamHTTP()
        self._providers: dict[str, Provider] = {}
        entries = list(enumerate(config.model_list))
        self.deployments = [self.build_deployment(d, i) for i, d in entries if "*" not in d.model_name]
        rs, gs = config.router_settings, config.general_settings
        self.shared_state = shared_state(
            redis_url(url=rs.redis_url, host=rs.redis_host, port=rs.redis_port, password=rs.redis_password, env=env),
            namespace=rs.redis_namespace,
        )
        self.router = Router(
            self.deployments,
            self.router_policy(),
            state=self.shared_state,
            wildcards=[self.wildcard_route(d, i) for i, d in entries if "*" in d.model_name],
        )
        self.health_checker = (
            HealthChecker(self.router, interval=gs.health_check_interval, recheck=max(rs.cooldown_time, 5.0))
            if gs.background_health_checks
            else None
        )
        self.db = Database(resolve_database_url(config.general_settings.database_url, env))
        self.spend = SpendWriter(self.db)
        self.keys = KeyCache(self.db, unflushed=self.spend.unflushed, lock=self.spend.lock)
        master_key = config.general_settings.master_key or env.get("LITELLM_MASTER_KEY") or None
        self.auth = Authenticator(master_key, self.keys)
        self.billing = billing_from_env(env, self.db)
        # Limits, budgets and key-cache invalidations are shared by the replicas through Redis when configured.
        self.scripts = Scripts(self.shared_state)
        KeyInvalidations(self.keys, self.scripts)
        self.metrics = Metrics(
            known_model=lambda name: self.router.find(name) is not None,
            deployments=self.router.all_stats,
            queued_rows=lambda: self.spend.queued_rows,
        )
        limits = RateLimitHook(
            SharedLimiter(self.scripts),
            self.router,
            global_max_parallel_requests=gs.global_max_parallel_requests,
            on_reject=self.metrics.rejected,
        )
        hooks: list[Hook] = [
            ObservabilityHook(self.metrics),  # first, so it sees every request; only looks, after the call
            AuthHook(self.auth),
            *(extra_hooks or []),
            limits,
            BudgetHook(self.router, self.spend, shared=SharedBudgets(limits)),
            *billing_hooks(self),
            *self.cache_hooks(),
            SpendLogHook(self.spend),
        ]
        self.gateway = Gateway(self.router, hooks)
        self.max_body_bytes = int(config.general_settings.max_request_size_mb * 1024 * 1024)
        self._discovery: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # Components add checks: each returns (name, {"status": "ok" | "error" | ..., ...}).
        self.readiness_checks: list[ReadinessCheck] = [self._database_readiness, self._shared_state_readiness]
        # The tailnet (Tailscale in the Railway container) is reported, not required: hosted providers still serve.
        self.readiness_checks.append(TailnetCheck(env, lambda: self.router.deployments, self.http))
        self._migrated = False
        self._migration_retry: asyncio.Task[None] | None = None
        self.ops = OperatorControls(self)  # IP allowlist, models stored in the database

    # -- building -----------------------------------------------------------------------------

    def cache_hooks(self) -> list[Hook]:
        ls, rs = self.config.litellm_settings, self.config.router_settings
        if not ls.cache:
            return []
        shared = redis_url(
            url=rs.redis_url, host=rs.redis_host, port=rs.redis_port, password=rs.redis_password, env=self.env
        )
        try:
            settings = cache_settings(ls.cache_params, shared_redis_url=shared)
        except ValueError as exc:
            raise StartupError(f"{self.config.source or 'config'}: litellm_settings.{exc}") from None
        return [CacheHook(settings, self.router)]

    def provider(self, name: str) -> Provider:
        if name not in self._providers:
            cls = provider_class(name)
            if cls is None:
                raise StartupError(f"unknown provider '{name}' (known: {', '.join(provider_names())})")
            self._providers[name] = cls(self.http)
        return self._providers[name]

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
        if not api_base:
            raise StartupError(f"{where}: litellm_params.api_base is required for provider '{provider.name}'")
        api_key = params.api_key or (self.env.get(provider.api_key_env) if provider.api_key_env else None)
        rs, ls = self.config.router_settings, self.config.litellm_settings
        timeout = params.timeout or rs.timeout or ls.request_timeout or DEFAULT_TIMEOUT
        extras = params.model_extra or {}
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
            max_retries=params.max_retries,
            rpm=params.rpm,
            tpm=params.tpm,
            input_cost_per_token=params.input_cost_per_token,
            output_cost_per_token=params.output_cost_per_token,
            drop_params=params.drop_params if params.drop_params is not None else ls.drop_params,
            proxy_url=proxy_for(api_base, params.proxy, self.env),
            extra_headers=dict(params.extra_headers or {}),
            request_defaults={k: v for k, v in extras.items() if k in REQUEST_DEFAULT_PARAMS},
            model_info=entry.model_info.model_dump(exclude_none=True),
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.http.start()
        await self.shared_state.start()
        await self.router.start()
        if self.health_checker is not None:
            await self.health_checker.start()
        if not await self._migrate():
            self._migration_retry = asyncio.create_task(self._migrate_until_done())
        await self.spend.start()
        await self.ops.start()
        if self.discover_ollama:
            await self.discover()
            self._discovery = asyncio.create_task(self._rediscover_forever())
        await self.gateway.start()
        if self.auth.open:
            log.warning(
                "NO MASTER KEY IS SET: this proxy is open to anyone who can reach it. "
                "Set LITELLM_MASTER_KEY or general_settings.master_key."
            )

    async def stop(self) -> None:
        if self._discovery is not None:
            self._discovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._discovery
        if self._migration_retry is not None:
            self._migration_retry.cancel()
        await self.gateway.stop()
        await self.ops.stop()
        await self.spend.stop()
        await self.db.close()
        if self.health_checker is not None:
            await self.health_checker.stop()
        await self.router.stop()
        await self.shared_state.close()
        await self.http.close()

    async def _migrate(self) -> bool:
        try:
            await self.db.migrate()
        except Exception as error:
            log.error(
                "database %s is not usable yet (%s); retrying in the background",
                self.db.describe(),
                type(error).__name__,
            )
            return False
        self._migrated = True
        return True

    async def _migrate_until_done(self) -> None:
        while not await self._migrate():
            await asyncio.sleep(5)

    async def _database_readiness(self) -> tuple[str, dict[str, Any]]:
        problem = await self.db.ping()
        if problem is None and not self._migrated:
            problem = "migrations have not run yet"
        result: dict[str, Any] = {
            "status": "ok" if problem is None else "error",
            "url": self.db.describe(),
            "queued_spend_rows": self.spend.queued_rows,
        }
        if problem:
            result["error"] = problem
        return "database", result

    async def _shared_state_readiness(self) -> tuple[str, dict[str, Any]]:
        state = self.shared_state
        status = "ok" if state.shared or not state.distributed else "degraded"
        return "shared_state", {"status": status, "backend": state.describe(), "required": False}

    def check_models(self, models: list[str] | None, param: str = "models") -> None:
        """Admin input: every model named must be one this proxy serves."""
        for name in models or ():
            if name not in ALL_MODELS and self.router.find(name) is None:
                raise invalid_request(
                    f"unknown model '{name}' in '{param}'; GET /v1/models lists the models", param=param
                )

    async def readiness(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "status": "healthy",
            "proxyllm_version": __version__,
            "models": len(self.router.model_names()),
            "auth": "open" if self.auth.open else "master_key",
        }
        for check in self.readiness_checks:
            name, result = await check()
            report[name] = result
            if result.get("status") == "error" and result.get("required", True):
                report["status"] = "unhealthy"
        return report

    async def discover(self) -> None:
        """Serve every model the local Ollama lists, each under its own name."""
        base = (self.env.get("OLLAMA_API_BASE") or "http://localhost:11434").rstrip("/")
        provider = self.provider("ollama_chat")
        try:
            names = await provider.list_models(base, self.env.get("OLLAMA_API_KEY"))
        except ProxyError as exc:
            log.warning(
                "no models discovered: Ollama at %s did not answer (%s); retrying every %ss",
                base,
                exc.message,
                int(DISCOVERY_INTERVAL),
            )
            return
        configured = [d for d in self.deployments if not d.model_info.get("discovered")]
        found = [
            self.build_deployment(
                DeploymentConfig.model_validate(
                    {
                        "model_name": name,
                        "litellm_params": {"model": f"ollama_chat/{name}", "api_base": base},
                        "model_info": {"discovered": True},
                    }
                )
            )
            for name in names
        ]
        before = {d.model_name for d in self.deployments}
        self.deployments = configured + found
        self.router.set_deployments(self.deployments)
        added = sorted({d.model_name for d in found} - before)
        if added:
            log.info("serving Ollama models from %s: %s", base, ", ".join(added))

    async def _rediscover_forever(self) -> None:
        while True:
            await asyncio.sleep(DISCOVERY_INTERVAL)
            try:
                await self.discover()
            except Exception:
                log.exception("Ollama model discovery failed")


def fallback_map(*lists: list[dict[str, list[str]]]) -> dict[str, list[str]]:
    """LiteLLM's ``[{group: [fallback, ...]}, ...]`` lists, merged into one mapping."""
    merged: dict[str, list[str]] = {}
    for entries in lists:
        for entry in entries:
            for group, targets in entry.items():
                merged.setdefault(group, []).extend(targets)
    return merged
