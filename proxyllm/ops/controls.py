"""Operator controls, built from ``general_settings``: the IP allowlist and models stored in the database.

(The audit log needs no setup: routes call ``proxyllm.ops.audit.record`` inside their transaction.)
"""

from __future__ import annotations

import logging

from proxyllm.config.schema import DeploymentConfig
from proxyllm.core.clients import ClientResolver, Networks
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.masking import mask_url, masked
from proxyllm.ops.crypto import SecretBox
from proxyllm.ops.model_store import ModelStore, Serving, env_flag, poll_seconds
from proxyllm.ops.sync import ModelSync
from proxyllm.state import redis_url

log = logging.getLogger("proxyllm.ops")
POLL_WITHOUT_REDIS = 2.0
POLL_WITH_REDIS = 30.0


class OperatorControls:
    def __init__(self, serving: Serving) -> None:
        from proxyllm.core.errors import StartupError

        self.serving = serving
        config, env = serving.config, serving.env
        gs, rs = config.general_settings, config.router_settings
        where = f"{config.source or 'config'}: general_settings"
        try:
            self.allowed = Networks.parse(gs.allowed_ips, f"{where}.allowed_ips") if gs.allowed_ips else None
            trusted = Networks.parse(gs.trusted_proxies, f"{where}.trusted_proxies")
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        if gs.allowed_ips is not None and not gs.allowed_ips:
            log.warning("general_settings.allowed_ips is empty: no IP allowlist is applied")
        self.resolver = ClientResolver(trusted, gs.client_ip_header)

        # Config-file deployments in the order Runtime built them, to tell sources apart.
        entries = [e for e in config.model_list if "*" not in e.model_name]
        self.config_entries: dict[str, DeploymentConfig] = {
            dep.id: entry for dep, entry in zip(serving.table, entries, strict=False)
        }
        self.models: ModelStore | None = None
        self.sync: ModelSync | None = None
        if gs.store_model_in_db or env_flag(env.get("STORE_MODEL_IN_DB")):
            salt_key = env.get("LITELLM_SALT_KEY")
            if not salt_key:
                salt_key = gs.master_key or env.get("LITELLM_MASTER_KEY")
                if not salt_key:
                    raise StartupError(
                        "store_model_in_db is on but neither LITELLM_SALT_KEY nor a master key is set: one of them "
                        "encrypts the model credentials stored in the database"
                    )
                log.warning(
                    "LITELLM_SALT_KEY IS NOT SET: the model credentials stored in the database are encrypted with "
                    "the master key (as LiteLLM does). Rotating the master key will make them unreadable; set "
                    "LITELLM_SALT_KEY to a long random secret before storing models"
                )
            source = config.source or "the config file"
            self.models = ModelStore(
                serving, SecretBox(salt_key), config_ids=dict.fromkeys(self.config_entries, source)
            )
            url = redis_url(
                url=rs.redis_url, host=rs.redis_host, port=rs.redis_port, password=rs.redis_password, env=env
            )
            interval = poll_seconds(env, POLL_WITH_REDIS if url else POLL_WITHOUT_REDIS)
            self.sync = ModelSync(self.models, interval=interval, redis_url=url, channel=f"{rs.redis_namespace}:models")

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.models is None or self.sync is None:
            return
        try:
            await self.models.refresh(force=True)
        except Exception as exc:
            log.warning("models in the database not loaded yet (%s); retrying in the background", type(exc).__name__)
        await self.sync.start()

    async def stop(self) -> None:
        if self.sync is not None:
            await self.sync.stop()

    async def changed(self, revision: int) -> None:
        """After a committed change on this replica: serve it here now and tell the others."""
        assert self.models is not None and self.sync is not None
        try:
            await self.models.refresh()
        except Exception as exc:  # committed all the same: polling serves it here shortly
            log.warning("reloading models after a change failed (%s); polling retries", type(exc).__name__)
        await self.sync.announce(revision)

    async def readiness(self) -> tuple[str, JSONObject]:
        assert self.models is not None
        result: JSONObject = {
            "status": "ok" if self.models.revision is not None and not self.models.not_served else "error",
            "required": False,
            "revision": self.models.revision,
            "served": len(self.models.records),
        }
        if self.models.not_served:
            result["not_served"] = {mid: why for mid, (_, why) in self.models.not_served.items()}
        return "database_models", result

    # -- the models API -----------------------------------------------------------------------

    def require_models(self) -> ModelStore:
        if self.models is None:
            raise invalid_request(
                "models cannot be managed through the API on this proxy: set general_settings.store_model_in_db: "
                "true (or STORE_MODEL_IN_DB=True) and LITELLM_SALT_KEY, then restart",
                code="store_model_in_db_disabled",
            )
        return self.models

    def model_info(self, model_id: str | None = None) -> list[JSONObject]:
        """Every model, whatever its source, with secrets masked."""
        views: list[JSONObject] = []
        source = self.serving.config.source
        for dep in self.serving.table:
            if dep.model_info.get("db_model"):
                continue
            entry = self.config_entries.get(dep.id)
            if entry is not None:
                views.append(_entry_view(entry, dep.id, "config_file", source))
            elif dep.model_info.get("discovered"):
                views.append(_discovered_view(dep))
        for entry in self.serving.config.model_list:
            if "*" in entry.model_name:
                views.append(_entry_view(entry, entry.model_info.id, "config_file", source))
        if self.models is not None:
            views.extend(self.models.info(r) for r in self.models.records.values())
            for mid, (name, why) in self.models.not_served.items():
                views.append(
                    {
                        "model_name": name,
                        "litellm_params": None,
                        "model_info": {"id": mid, "db_model": True, "source": "database", "error": why},
                    }
                )
        if model_id is not None:
            views = [v for v in views if v["model_info"].get("id") == model_id]
        return views


def _entry_view(entry: DeploymentConfig, model_id: str | None, source: str, path: str | None) -> JSONObject:
    info = {**entry.model_info.model_dump(mode="json", exclude_none=True), "id": model_id}
    return {
        "model_name": entry.model_name,
        "litellm_params": masked(entry.litellm_params.model_dump(mode="json", exclude_none=True)),
        "model_info": {**info, "db_model": False, "source": source, "config_file": path},
    }


def _discovered_view(dep: Deployment) -> JSONObject:
    return {
        "model_name": dep.model_name,
        "litellm_params": {"model": f"{dep.provider.name}/{dep.upstream_model}", "api_base": mask_url(dep.api_base)},
        "model_info": {**dep.model_info, "id": dep.id, "db_model": False, "source": "discovered"},
    }
