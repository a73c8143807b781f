"""Models managed at run time: rows in ``proxy_models`` <-> deployments in the router.

Secret parameters (``api_key`` and the like, see masking.is_secret_name) are sealed with the salt key
before they reach the database and opened only in memory, to build deployments. Every change bumps the
``models`` revision in the same transaction; ``refresh`` reloads all rows when the revision moved and
swaps the router's table at once, so requests in flight keep the deployment they started with.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.accounts.store import aware
from proxyllm.config.loader import ENV_PREFIX
from proxyllm.config.schema import DeploymentConfig, ProxyConfig
from proxyllm.core.deployment import Deployment
from proxyllm.core.deployment_table import DeploymentTable, Source
from proxyllm.core.errors import ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.masking import is_secret_name, mask_url, mask_value, masked, split_secrets
from proxyllm.db.database import Database
from proxyllm.db.tables_ops import OpsRevision, StoredModel
from proxyllm.ops.crypto import SecretBox, SecretError


@dataclass(frozen=True)
class Serving:
    """The parts of the proxy the operator controls work on (the server's runtime provides them)."""

    config: ProxyConfig
    env: Mapping[str, str]
    db: Database
    table: DeploymentTable
    build_deployment: Callable[[DeploymentConfig], Deployment]


log = logging.getLogger("proxyllm.models")
REVISION = "models"
MANAGED_INFO = frozenset({"id", "db_model", "source"})  # model_info keys the proxy sets itself


@dataclass
class ModelRecord:
    """One database model with its parameters in clear (in memory only)."""

    model_id: str
    model_name: str
    params: JSONObject
    model_info: JSONObject = field(default_factory=dict)
    created_by: str | None = None
    updated_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def entry(self) -> JSONObject:
        info = {**self.model_info, "id": self.model_id, "db_model": True}
        return {"model_name": self.model_name, "litellm_params": self.params, "model_info": info}

    def audit_view(self) -> JSONObject:
        """Flat fields so an update's audit row names each parameter that changed."""
        view: JSONObject = {"model_name": self.model_name}
        view.update({f"litellm_params.{k}": v for k, v in self.params.items()})
        view.update({f"model_info.{k}": v for k, v in self.model_info.items()})
        return view


def bad_params(exc: ValidationError, prefix: str) -> ProxyError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
    return invalid_request(f"'{where}': {first['msg']}", param=where)


# The proxy's own secrets: a model stored through the API (by an admin, or a stolen dashboard session)
# must not send them to an api_base it chooses. Names, and prefixes ending in "_".
PROXY_SECRET_ENV = frozenset(
    {
        "LITELLM_MASTER_KEY",
        "LITELLM_SALT_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_PASSWORD",
        "TS_AUTHKEY",
        "TAILSCALE_AUTHKEY",
        "TAILSCALE_AUTH_KEY",
        "PGPASSWORD",
        "RAILWAY_TOKEN",
        "RAILWAY_API_TOKEN",
    }
)
PROXY_SECRET_PREFIXES = ("STRIPE_", "LITELLM_", "PROXYLLM_", "DATABASE_", "REDIS_", "TS_", "TAILSCALE_", "POSTGRES_")


def env_refused(var: str, mode: str, extra: tuple[str, ...] = ()) -> str | None:
    """Why a stored model may not read ``var`` (None when it may); ``mode`` is general_settings.stored_models_env."""
    if mode == "any":
        return None
    if mode == "off":
        return "stored models may not read the environment here (general_settings.stored_models_env: off)"
    name = var.upper()
    denied = name in PROXY_SECRET_ENV or name.startswith(PROXY_SECRET_PREFIXES)
    denied = denied or any(name == e.upper() or (e.endswith("*") and name.startswith(e[:-1].upper())) for e in extra)
    if denied:
        return f"environment variable {var} holds one of the proxy's own secrets and cannot be used by a stored model"
    return None


def _resolve_env(
    params: JSONObject, env: Mapping[str, str], mode: str = "restricted", extra: tuple[str, ...] = ()
) -> JSONObject:
    """``os.environ/NAME`` values, read from the proxy's environment when the deployment is built."""
    resolved = dict(params)
    for name, value in params.items():
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            var = value[len(ENV_PREFIX) :]
            why = env_refused(var, mode, extra)
            if why is not None:
                raise invalid_request(f"'litellm_params.{name}': {why}", param=f"litellm_params.{name}")
            if var not in env:
                raise invalid_request(
                    f"'litellm_params.{name}' refers to environment variable {var}, which is not set on this proxy",
                    param=f"litellm_params.{name}",
                )
            resolved[name] = env[var]
    return resolved


class ModelStore:
    def __init__(self, serving: Serving, box: SecretBox, *, config_ids: Mapping[str, str]) -> None:
        self.serving = serving
        self.box = box
        self.config_ids = config_ids  # deployment id -> where it is defined (the config file)
        self.records: dict[str, ModelRecord] = {}
        self.not_served: dict[str, tuple[str, str]] = {}  # model id -> (model_name, why)
        self.revision: int | None = None
        self._lock = asyncio.Lock()

    # -- rows <-> records ------------------------------------------------------------------------

    def seal(self, row: StoredModel, record: ModelRecord, actor: str) -> None:
        clear, secret = split_secrets(record.params)
        row.model_name = record.model_name
        row.litellm_params = clear
        row.secret_params = self.box.seal(orjson.dumps(secret), record.model_id) if secret else None
        row.model_info = {k: v for k, v in record.model_info.items() if k not in MANAGED_INFO}
        row.updated_by = actor
        if row.created_by is None:
            row.created_by = actor

    def open(self, row: StoredModel) -> ModelRecord:
        secret: JSONObject = {}
        if row.secret_params:
            secret = orjson.loads(self.box.open(row.secret_params, row.model_id))
        return ModelRecord(
            model_id=row.model_id,
            model_name=row.model_name,
            params={**(row.litellm_params or {}), **secret},
            model_info=dict(row.model_info or {}),
            created_by=row.created_by,
            updated_by=row.updated_by,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
        )

    # -- validation ------------------------------------------------------------------------------

    def record_from(
        self, model_id: str, model_name: str, params: JSONObject, info: JSONObject
    ) -> tuple[ModelRecord, Deployment]:
        """A checked record (parameters normalised as the config file's are) and its deployment; 400 if not usable."""
        if "*" in model_name:
            raise invalid_request(
                "wildcard model names ('*') are supported in the config file only", param="model_name"
            )
        try:
            entry = DeploymentConfig.model_validate(
                {"model_name": model_name, "litellm_params": params, "model_info": info}
            )
        except ValidationError as exc:
            raise bad_params(exc, "") from None
        normal = entry.litellm_params.model_dump(mode="json", exclude_unset=True)
        record = ModelRecord(model_id, model_name, normal, {k: v for k, v in info.items() if k not in MANAGED_INFO})
        return record, self.build(record)

    def build(self, record: ModelRecord) -> Deployment:
        gs = self.serving.config.general_settings
        params = _resolve_env(
            record.params, self.serving.env, gs.stored_models_env, tuple(gs.stored_models_env_denylist)
        )
        entry = DeploymentConfig.model_validate({**record.entry(), "litellm_params": params})
        from proxyllm.core.errors import StartupError

        source = self.serving.config.source or "config"
        try:
            dep = self.serving.build_deployment(entry)
        except StartupError as exc:  # its message names a config file entry; say it plainly
            message = str(exc).removeprefix(f"{source}: model_list[0] (model_name {record.model_name!r}): ")
            raise invalid_request(message, param="litellm_params") from None
        if not getattr(dep.provider, "supported", True):  # a config file may carry one; a new model may not
            from proxyllm.core.provider import provider_names

            raise invalid_request(
                f"unknown provider '{dep.provider.name}' in litellm_params.model (implemented: "
                f"{', '.join(provider_names())})",
                param="litellm_params.model",
            )
        return dep

    def check_new_id(self, model_id: str) -> None:
        if model_id in self.config_ids:
            raise invalid_request(
                f"model id '{model_id}' is already used by a model in {self.config_ids[model_id]}",
                param="model_info.id",
            )
        if any(d.id == model_id and not d.model_info.get("db_model") for d in self.serving.table):
            raise invalid_request(f"model id '{model_id}' is already used by another model", param="model_info.id")

    def check_managed(self, model_id: str) -> None:
        """Config-file models are changed by editing the file, not through the API."""
        if model_id in self.config_ids:
            raise invalid_request(
                f"model '{model_id}' is defined in the config file {self.config_ids[model_id]}; "
                "change or remove it there (only models added through /model/new can be changed here)",
                param="id",
                code="config_model",
            )
        if any(d.id == model_id and d.model_info.get("discovered") for d in self.serving.table):
            raise invalid_request(
                f"model '{model_id}' was discovered on Ollama and cannot be changed through the API", param="id"
            )

    @staticmethod
    def new_id(info: Mapping[str, JSONValue]) -> str:
        given = info.get("id")
        if given is None:
            return str(uuid.uuid4())
        if not isinstance(given, str) or not given.strip() or len(given) > 64:
            raise invalid_request(
                "model_info.id must be a non-empty string of at most 64 characters", param="model_info.id"
            )
        return given

    @staticmethod
    def merged(old: Mapping[str, JSONValue], changes: Mapping[str, JSONValue]) -> JSONObject:
        """An update: null removes a field; a secret sent back masked (as /model/info shows it) is kept."""
        result = dict(old)
        for name, value in changes.items():
            if value is None:
                result.pop(name, None)
            elif is_secret_name(name) and name in old and value == mask_value(old[name]):
                continue
            elif isinstance(value, str) and isinstance(old.get(name), str) and value == mask_url(old[name]):
                continue  # a URL sent back as /model/info shows it: its hidden credentials are kept
            else:
                result[name] = value
        return result

    async def import_model(
        self, *, model_id: str, model_name: str, params: JSONObject, info: JSONObject, dry_run: bool
    ) -> bool:
        """Store a model from another proxy's database (``proxyllm import-litellm``), checked like
        ``/model/new``; an existing row with that id is replaced. True when it is new."""
        if not model_id or len(model_id) > 64:
            raise invalid_request("model id must be 1 to 64 characters", param="model_info.id")
        if model_id in self.config_ids:
            raise invalid_request(f"model id '{model_id}' is already used by the config file", param="model_info.id")
        record, _ = self.record_from(model_id, model_name, params, info)
        async with self.serving.db.session() as session:
            row = await session.get(StoredModel, model_id)
            created = row is None
            if dry_run:
                return created
            if row is None:
                row = StoredModel(model_id=model_id)
                session.add(row)
            self.seal(row, record, "import-litellm")
            await self.bump(session)
        return created

    # -- revisions and reloading -----------------------------------------------------------------

    @staticmethod
    async def bump(session: AsyncSession) -> int:
        """Increment the models revision in the caller's transaction; returns the new value."""
        stmt = update(OpsRevision).where(OpsRevision.name == REVISION).values(revision=OpsRevision.revision + 1)
        result = await session.execute(stmt)
        if not getattr(result, "rowcount", 0):
            session.add(OpsRevision(name=REVISION, revision=1))
            await session.flush()
        value = await session.scalar(select(OpsRevision.revision).where(OpsRevision.name == REVISION))
        return int(value or 0)

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload the models when the revision moved (or always, with ``force``); True when reloaded."""
        async with self._lock:
            async with self.serving.db.session() as session:
                revision = int(
                    await session.scalar(select(OpsRevision.revision).where(OpsRevision.name == REVISION)) or 0
                )
                if revision == self.revision and not force:
                    return False
                rows = (await session.execute(select(StoredModel).order_by(StoredModel.created_at))).scalars().all()
            records: dict[str, ModelRecord] = {}
            deployments: list[Deployment] = []
            not_served: dict[str, tuple[str, str]] = {}
            for row in rows:
                try:
                    record = self.open(row)
                    deployments.append(self.build(record))
                except (SecretError, ProxyError, ValueError) as exc:
                    why = exc.message if isinstance(exc, ProxyError) else str(exc)
                    if self.not_served.get(row.model_id) != (row.model_name, why):
                        log.error("model %r (id %s) is not served: %s", row.model_name, row.model_id, why)
                    not_served[row.model_id] = (row.model_name, why)
                    continue
                records[record.model_id] = record
            self._install(deployments)
            self.records, self.not_served, self.revision = records, not_served, revision
            log.info("serving %d models from the database (revision %d)", len(deployments), revision)
            return True

    def _install(self, deployments: list[Deployment]) -> None:
        self.serving.table.replace(Source.DATABASE, deployments)

    # -- what admins see -------------------------------------------------------------------------

    def info(self, record: ModelRecord) -> JSONObject:
        return {
            "model_name": record.model_name,
            "litellm_params": masked(record.params),
            "model_info": {
                **record.model_info,
                "id": record.model_id,
                "db_model": True,
                "source": "database",
                "created_by": record.created_by,
                "updated_by": record.updated_by,
                "created_at": record.created_at.isoformat() if record.created_at else None,
                "updated_at": record.updated_at.isoformat() if record.updated_at else None,
            },
        }


def env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def poll_seconds(env: Mapping[str, str], default: float) -> float:
    raw = env.get("PROXYLLM_MODEL_POLL_SECONDS") or os.environ.get("PROXYLLM_MODEL_POLL_SECONDS")
    try:
        return max(0.2, float(raw)) if raw else default
    except ValueError:
        log.warning("PROXYLLM_MODEL_POLL_SECONDS=%r is not a number; polling every %gs", raw, default)
        return default
