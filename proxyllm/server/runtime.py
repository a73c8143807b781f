"""Everything one proxy process runs on, built from the config: providers, router, gateway, auth."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from proxyllm import __version__
from proxyllm.accounts.auth import Authenticator, AuthHook
from proxyllm.accounts.cache import KeyCache
from proxyllm.accounts.end_users import KIND as END_USER_KIND
from proxyllm.accounts.end_users import EndUserHook, EndUsers
from proxyllm.accounts.hooks import AccessHook, SpendLogHook
from proxyllm.accounts.invalidation import KeyInvalidations
from proxyllm.accounts.records import ALL_MODELS
from proxyllm.accounts.writer import SpendWriter
from proxyllm.billing.prices import Prices
from proxyllm.cache.hook import CacheHook
from proxyllm.cache.settings import cache_settings
from proxyllm.config.schema import DeploymentConfig, ProxyConfig
from proxyllm.core.admission import AdmissionHook, default_max_output_tokens
from proxyllm.core.background import cancel
from proxyllm.core.deployment import Deployment
from proxyllm.core.deployment_table import DeploymentTable
from proxyllm.core.errors import StartupError, invalid_request
from proxyllm.core.gateway import Gateway
from proxyllm.core.hooks import Hook
from proxyllm.core.provider import Provider
from proxyllm.core.router import Router, RouterPolicy
from proxyllm.core.routing.health import HealthChecker
from proxyllm.core.upstream_http import UpstreamHTTP
from proxyllm.db import Database, resolve_database_url
from proxyllm.db.spool import Spool
from proxyllm.limits.budget_hook import BudgetHook
from proxyllm.limits.budgets import SharedBudgets
from proxyllm.limits.hook import RateLimitHook
from proxyllm.limits.shared import SharedLimiter
from proxyllm.observability import Metrics, ObservabilityHook
from proxyllm.observability.readiness import ModelsCheck, allow_no_models
from proxyllm.observability.tracing import tracing_hooks
from proxyllm.ops.controls import OperatorControls
from proxyllm.ops.model_store import Serving
from proxyllm.server.billing_wiring import (
    billing_charges,
    billing_from_env,
    billing_gates,
    budgets_at_price_setting,
    notification_hooks,
    price_hooks,
)
from proxyllm.server.deployments import DeploymentFactory
from proxyllm.server.discovery import PROVIDER as DISCOVERY_PROVIDER
from proxyllm.server.discovery import ModelDiscovery, discovery_base
from proxyllm.state import redis_url, shared_state
from proxyllm.state.scripts import Scripts
from proxyllm.tailnet import TailnetCheck

log = logging.getLogger("proxyllm")
ReadinessCheck = Callable[[], Awaitable[tuple[str, dict[str, Any]]]]


def database_timeouts(env: Mapping[str, str]) -> dict[str, int]:
    """PostgreSQL statement and lock timeouts (milliseconds) and pool sizes from the environment."""
    found: dict[str, int] = {}
    for name, arg, most, unit in (
        ("PROXYLLM_DB_STATEMENT_TIMEOUT_MS", "statement_timeout_ms", 3_600_000, "milliseconds"),
        ("PROXYLLM_DB_LOCK_TIMEOUT_MS", "lock_timeout_ms", 3_600_000, "milliseconds"),
        ("PROXYLLM_DB_POOL_SIZE", "pool_size", 1000, "connections"),  # admin and writer pool (as much again overflow)
        ("PROXYLLM_DB_HOT_POOL_SIZE", "hot_pool_size", 1000, "connections"),  # the request path's (prepaid)
    ):
        raw = env.get(name)
        if raw:
            if not raw.isdigit() or not 0 < int(raw) <= most:
                raise StartupError(f"{name} must be a whole number of {unit} from 1 to {most}, got {raw!r}")
            found[arg] = int(raw)
    return found


def spool_directory(env: Mapping[str, str], db: Database) -> str:
    """Where queued writes are journaled when the database is away at shutdown (and dead letters while
    it is down): PROXYLLM_SPOOL_DIR, else beside a SQLite file, else ./proxyllm-spool."""
    configured = env.get("PROXYLLM_SPOOL_DIR")
    if configured:
        return configured
    if db.sqlite:
        path = db.url.split("///", 1)[-1]
        if path and path != ":memory:":
            return os.path.join(os.path.dirname(os.path.abspath(path)), "proxyllm-spool")
    return os.path.abspath("proxyllm-spool")


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
        self.factory = DeploymentFactory(config, env, self.http)
        entries = list(enumerate(config.model_list))
        self.table = DeploymentTable(self._build_all([(i, d) for i, d in entries if "*" not in d.model_name]))
        rs, gs = config.router_settings, config.general_settings
        self.shared_state = shared_state(
            redis_url(url=rs.redis_url, host=rs.redis_host, port=rs.redis_port, password=rs.redis_password, env=env),
            namespace=rs.redis_namespace,
        )
        self.router = Router(
            self.table.all,
            self.router_policy(),
            state=self.shared_state,
            wildcards=[self.factory.wildcard_route(d, i) for i, d in entries if "*" in d.model_name],
        )
        self.health_checker = (
            HealthChecker(self.router, interval=gs.health_check_interval, recheck=max(rs.cooldown_time, 5.0))
            if gs.background_health_checks
            else None
        )
        self.db = Database(resolve_database_url(config.general_settings.database_url, env), **database_timeouts(env))
        self.spend = SpendWriter(
            self.db,
            interval=gs.proxy_batch_write_at,
            spool=Spool(spool_directory(env, self.db), self.db.url),
            stop_deadline=float(env.get("PROXYLLM_SHUTDOWN_FLUSH_SECONDS") or 10),
        )
        self.budgets_at_price = budgets_at_price_setting(config, env)  # budgets count prices (docs/reselling.md)
        # End users (the request's ``user``): their limits and spend (accounts/end_users.py)
        self.end_users = EndUsers(
            self.db, unflushed=self.spend.unflushed, writer_state=lambda: (self.spend.flushing, self.spend.epoch)
        )
        self.spend.charge_writers[END_USER_KIND] = self.end_users.write_charge
        self.spend.resetters.append(self.end_users.reset_budgets)
        self.keys = KeyCache(
            self.db,
            unflushed=self.spend.unflushed,
            writer_state=lambda: (self.spend.flushing, self.spend.epoch),
            budgets_at_price=self.budgets_at_price,
        )
        master_key = config.general_settings.master_key or env.get("LITELLM_MASTER_KEY") or None
        self.auth = Authenticator(master_key, self.keys)
        self.billing = billing_from_env(env, self.db)
        self.prices: Prices | None = None  # customer prices (billing/prices.py), set by price_hooks
        # Limits, budgets and key-cache invalidations are shared by the replicas through Redis when configured.
        self.scripts = Scripts(self.shared_state)
        self.invalidations = KeyInvalidations(self.keys, self.scripts)  # other replicas' key changes
        self.metrics = Metrics(
            known_model=lambda name: self.router.find(name) is not None,
            deployments=self.router.all_stats,
            queued_rows=lambda: self.spend.queued_rows,
        )
        self.spend.on_dead_letter = self.metrics.dead_letter
        if self.billing is not None:
            self.billing.on_low_balance = self.metrics.low_balance
        limits = RateLimitHook(
            SharedLimiter(self.scripts),
            self.router,
            global_max_parallel_requests=gs.global_max_parallel_requests,
            on_reject=self.metrics.rejected,
        )
        cache = self.cache_hooks()
        try:
            default_output = default_max_output_tokens(env)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        # The order is the meaning: each hook's before_call runs only if every one above it let the
        # request through, and its after_call runs (in reverse order) only if its before_call ran.
        hooks: list[Hook] = [
            *tracing_hooks(self),  # none unless OpenTelemetry is configured (observability/tracing.py)
            ObservabilityHook(self.metrics),  # sees every request; only looks, after the call
            AuthHook(self.auth),  # who is calling
            SpendLogHook(self.spend),  # one spend row for every authenticated request, whatever its outcome
            AdmissionHook(self.router, default_output=default_output),  # model group, bounds, worst-case cost
            *price_hooks(self),  # the customer's price plan (rate card, markup) and worst-case price
            *notification_hooks(self),  # signed webhooks / email; sees a budget's refusal below
            AccessHook(self.router),  # may this key (its user, its team) use the model?
            EndUserHook(self.end_users),  # the request's end user: blocked? its limits join the key's below
            *(extra_hooks or []),
            *billing_gates(self),  # subscription state, Stripe customer link
            limits,  # rate limits and parallel slots
            *cache,  # a hit answers here: nothing below runs, so no money is reserved
            # budgets: with Redis and no cache, this also checks the deferred rate limits in the same round trip
            BudgetHook(
                self.spend,
                shared=SharedBudgets(limits, at_price=self.budgets_at_price) if not cache else None,
                at_price=self.budgets_at_price,
            ),
            *billing_charges(self),  # prepaid credit: one reservation, settled in the spend writer's batch
        ]
        self.table.on_change(self.router.set_deployments)
        self.gateway = Gateway(self.router, hooks)
        self.max_body_bytes = int(config.general_settings.max_request_size_mb * 1024 * 1024)
        self.discovery = (  # make run without a config: serve what the local Ollama lists (server/discovery.py)
            ModelDiscovery(
                self.table,
                self.build_deployment,
                self.factory.provider(DISCOVERY_PROVIDER),
                api_base=discovery_base(env),
                api_key=env.get("OLLAMA_API_KEY"),
            )
            if discover_ollama
            else None
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        # Components add checks: each returns (name, {"status": "ok" | "error" | ..., ...}).
        self.readiness_checks: list[ReadinessCheck] = [self._database_readiness, self._shared_state_readiness]
        # The tailnet (Tailscale in the Railway container) is reported, not required: hosted providers still serve.
        self.readiness_checks.append(TailnetCheck(env, lambda: self.router.deployments, self.http))
        self.readiness_checks.append(  # 503 while no model is served (observability/readiness.py)
            ModelsCheck(
                lambda: len(self.router.model_names()) + bool(self.router.wildcards),
                allow_none=allow_no_models(gs.allow_no_models, env),
                discovering_from=discovery_base(env) if discover_ollama else None,
            )
        )
        self._migrated = False
        self._migration_retry: asyncio.Task[None] | None = None
        # IP allowlist, models stored in the database
        self.ops = OperatorControls(Serving(config, env, self.db, self.table, self.build_deployment))
        if self.ops.sync is not None:
            self.readiness_checks.append(self.ops.readiness)

    @property
    def deployments(self) -> list[Deployment]:
        """Every deployment served now (config file, discovery, database): ``table`` owns the list."""
        return self.table.all

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

    def _build_all(self, entries: list[tuple[int, DeploymentConfig]]) -> list[Deployment]:
        """Every deployment of the config, or one StartupError that names every entry at fault."""
        built: list[Deployment] = []
        problems: list[str] = []
        for index, entry in entries:
            try:
                built.append(self.build_deployment(entry, index))
            except StartupError as exc:
                problems.append(str(exc))
        if len(problems) == 1:
            raise StartupError(problems[0])
        if problems:
            raise StartupError(f"{len(problems)} problems in model_list:\n  " + "\n  ".join(problems))
        return built

    def provider(self, name: str) -> Provider:
        return self.factory.provider(name)

    def router_policy(self) -> RouterPolicy:
        return self.factory.router_policy()

    def build_deployment(self, entry: DeploymentConfig, index: int = 0) -> Deployment:
        return self.factory.build_deployment(entry, index)

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
        if self.discovery is not None:
            await self.discovery.start()
        await self.gateway.start()
        if self.auth.open:
            log.warning(
                "NO MASTER KEY IS SET: this proxy is open to anyone who can reach it. "
                "Set LITELLM_MASTER_KEY or general_settings.master_key."
            )

    async def stop(self) -> None:
        if self.discovery is not None:
            await self.discovery.stop()
        await cancel(self._migration_retry)
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
        spend = self.spend
        result: dict[str, Any] = {
            "status": "ok" if problem is None else "error",
            "url": self.db.describe(),
            "queued_spend_rows": spend.queued_rows,
            "queued_writes": spend.queued,
            "dead_letters": spend.dead_letters,
        }
        if spend.spool is not None:
            result["dead_letters_in_spool"] = spend.spool.count(spend.spool.dead_letters)
        if spend.failing_since is not None:
            seconds = round(time.monotonic() - spend.failing_since, 1)
            result["writes_failing_for_seconds"] = seconds
            if problem is None:
                result["status"] = "degraded"
                problem = f"queued writes have not reached the database for {seconds:g}s"
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
            if name not in ALL_MODELS and self.router.find(name) is None and name not in self.router.access_groups():
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
