"""Everything one proxy process runs on, composed from its parts: providers, router, storage, accounts,
billing, the request path's hooks, readiness. Each part is built where it is defined (the
``server/wiring_*.py`` modules, ``server/billing_wiring.py``, ``server/deployments.py``); this module
only says which parts there are, in which order the request path runs them, and how they start and stop."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from proxyllm.accounts.auth import AuthHook
from proxyllm.accounts.end_users import EndUserHook
from proxyllm.accounts.hooks import AccessHook, SpendLogHook
from proxyllm.accounts.invalidation import KeyInvalidations
from proxyllm.accounts.records import ALL_MODELS
from proxyllm.billing.prices import Prices
from proxyllm.config.schema import DeploymentConfig, ProxyConfig
from proxyllm.core.deployment import Deployment
from proxyllm.core.deployment_table import DeploymentTable
from proxyllm.core.errors import invalid_request
from proxyllm.core.gateway import Gateway
from proxyllm.core.hooks import Hook
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.provider import Provider
from proxyllm.core.router import Router, RouterPolicy
from proxyllm.core.upstream_http import UpstreamHTTP
from proxyllm.observability import ObservabilityHook
from proxyllm.observability.readiness import ModelsCheck, allow_no_models
from proxyllm.observability.tracing import tracing_hooks
from proxyllm.ops.controls import OperatorControls
from proxyllm.ops.model_store import Serving
from proxyllm.server import wiring_accounts as accounts
from proxyllm.server import wiring_hooks as parts
from proxyllm.server import wiring_storage as storage
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
from proxyllm.server.discovery import discovery_base
from proxyllm.server.wiring_readiness import DatabaseCheck, ReadinessCheck, SharedStateCheck, readiness_report
from proxyllm.server.wiring_storage import database_timeouts, spool_directory
from proxyllm.state.scripts import Scripts
from proxyllm.tailnet import TailnetCheck

__all__ = ["ReadinessCheck", "Runtime", "database_timeouts", "spool_directory"]

log = logging.getLogger("proxyllm")


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
        # Upstreams: one HTTP client, one provider instance each, the deployment table and the router.
        self.http = UpstreamHTTP()
        self.factory = DeploymentFactory(config, env, self.http)
        self.table = DeploymentTable(self.factory.config_deployments())
        self.shared_state = storage.build_shared_state(config, env)
        self.router = Router(
            self.table.all, self.router_policy(), state=self.shared_state, wildcards=self.factory.wildcard_routes()
        )
        self.table.on_change(self.router.set_deployments)
        self.health_checker = parts.build_health_checker(config, self.router)
        # Storage and accounts.
        self.db = storage.build_database(config, env)
        self.migrations = storage.Migrations(self.db)
        self.spend = storage.build_spend_writer(config, env, self.db)
        self.budgets_at_price = budgets_at_price_setting(config, env)  # budgets count prices (docs/reselling.md)
        self.end_users = accounts.build_end_users(self.db, self.spend)
        self.keys = accounts.build_key_cache(self.db, self.spend, budgets_at_price=self.budgets_at_price)
        self.auth = accounts.build_authenticator(config, env, self.keys)
        self.billing = billing_from_env(env, self.db)
        self.prices: Prices | None = None  # customer prices (billing/prices.py), set by price_hooks
        # Limits, budgets and key-cache invalidations are shared by the replicas through Redis when configured.
        self.scripts = Scripts(self.shared_state)
        self.invalidations = KeyInvalidations(self.keys, self.scripts)  # other replicas' key changes
        self.metrics = parts.build_metrics(self.router, self.spend, self.billing)
        self.gateway = Gateway(self.router, self._hooks(extra_hooks or []))
        self.max_body_bytes = int(config.general_settings.max_request_size_mb * 1024 * 1024)
        self.discovery = (
            parts.build_discovery(self.table, self.build_deployment, self.provider(DISCOVERY_PROVIDER), env)
            if discover_ollama
            else None
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        # IP allowlist, models stored in the database
        self.ops = OperatorControls(Serving(config, env, self.db, self.table, self.build_deployment))
        self.readiness_checks: list[ReadinessCheck] = self._readiness_checks()

    def _hooks(self, extra: list[Hook]) -> list[Hook]:
        """The request path. The order is the meaning: each hook's before_call runs only if every one above
        it let the request through, and its after_call runs (in reverse order) only if its before_call ran.
        So: who is calling is known before anything is counted or charged; what a request may use is
        decided before limits count it; the cache answers before budgets and credit reserve money (a hit
        is never charged); and every authenticated request gets its spend row, whatever happens below."""
        limits = parts.rate_limit_hook(self.config, self.scripts, self.router, self.metrics)
        cache = parts.cache_hooks(self.config, self.env, self.router)
        admission = parts.admission_hook(self.router, self.env)
        return [
            *tracing_hooks(self),  # none unless OpenTelemetry is configured (observability/tracing.py)
            ObservabilityHook(self.metrics),  # sees every request; only looks, after the call
            AuthHook(self.auth),  # who is calling
            SpendLogHook(self.spend),  # one spend row for every authenticated request, whatever its outcome
            admission,  # model group, bounds on every client-controlled number, worst-case cost
            *price_hooks(self),  # the customer's price plan (rate card, markup) and worst-case price
            *notification_hooks(self),  # signed webhooks / email; sees a budget's refusal below
            AccessHook(self.router),  # may this key (its user, its team) use the model?
            EndUserHook(self.end_users),  # the request's end user: blocked? its limits join the key's below
            *extra,
            *billing_gates(self),  # subscription state, Stripe customer link
            limits,  # rate limits and parallel slots
            *cache,  # a hit answers here: nothing below runs, so no money is reserved
            parts.budget_hook(self.spend, limits, cached=bool(cache), at_price=self.budgets_at_price),
            *billing_charges(self),  # prepaid credit: one reservation, settled in the spend writer's batch
        ]

    def _readiness_checks(self) -> list[ReadinessCheck]:
        """Each returns (name, {"status": "ok" | "error" | ..., ...}); see server/wiring_readiness.py."""
        gs = self.config.general_settings
        checks: list[ReadinessCheck] = [
            DatabaseCheck(self.db, self.spend, self.migrations),
            SharedStateCheck(self.shared_state),
            # The tailnet (Tailscale in the Railway container) is reported, not required: hosted providers serve.
            TailnetCheck(self.env, lambda: self.router.deployments, self.http),
            ModelsCheck(  # 503 while no model is served (observability/readiness.py)
                lambda: len(self.router.model_names()) + bool(self.router.wildcards),
                allow_none=allow_no_models(gs.allow_no_models, self.env),
                discovering_from=discovery_base(self.env) if self.discover_ollama else None,
            ),
        ]
        if self.ops.sync is not None:
            checks.append(self.ops.readiness)
        return checks

    @property
    def deployments(self) -> list[Deployment]:
        """Every deployment served now (config file, discovery, database): ``table`` owns the list."""
        return self.table.all

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
        await self.migrations.start()
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
        await self.migrations.stop()
        await self.gateway.stop()
        await self.ops.stop()
        await self.spend.stop()
        await self.db.close()
        if self.health_checker is not None:
            await self.health_checker.stop()
        await self.router.stop()
        await self.shared_state.close()
        await self.http.close()

    # -- for the admin routes -----------------------------------------------------------------

    def check_models(self, models: list[str] | None, param: str = "models") -> None:
        """Admin input: every model named must be one this proxy serves."""
        for name in models or ():
            if name not in ALL_MODELS and self.router.find(name) is None and name not in self.router.access_groups():
                raise invalid_request(
                    f"unknown model '{name}' in '{param}'; GET /v1/models lists the models", param=param
                )

    async def readiness(self) -> JSONObject:
        return await readiness_report(
            self.readiness_checks, models=len(self.router.model_names()), auth_open=self.auth.open
        )
