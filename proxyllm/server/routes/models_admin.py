"""``/model/new``, ``/model/update``, ``/model/delete``, ``/model/info``: models managed at run time.

``/model/info`` answers any key: a virtual key sees the models it may use (``model_catalog.py``).

Each change is one transaction: the row (secrets sealed), the models revision, the audit record.
After the commit this replica serves the change at once and announces it to the others.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables_ops import StoredModel
from proxyllm.ops import audit
from proxyllm.ops.crypto import SecretError
from proxyllm.server.deps import Admin, Caller, RuntimeDep
from proxyllm.server.routes.model_catalog import deployment_entries

router = APIRouter(tags=["models"])


class ModelNew(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(min_length=1, max_length=255)
    litellm_params: JSONObject
    model_info: JSONObject = Field(default_factory=dict)


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, min_length=1, max_length=64)
    model_name: str | None = Field(default=None, min_length=1, max_length=255)
    litellm_params: JSONObject | None = None
    model_info: JSONObject | None = None


class ModelDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)


def _not_found(model_id: str) -> ProxyError:
    return ProxyError(ErrorKind.NOT_FOUND, f"no model with id '{model_id}' was added through the API", param="id")


def _actor(caller: Principal) -> str:
    return audit.actor_of(caller)[0]


@router.post("/model/new")
async def model_new(body: ModelNew, request: Request, runtime: RuntimeDep, caller: Admin) -> JSONObject:
    store = runtime.ops.require_models()
    model_id = store.new_id(body.model_info)
    store.check_new_id(model_id)
    record, _ = store.record_from(model_id, body.model_name, body.litellm_params, body.model_info)
    async with runtime.db.session() as session:
        if await session.get(StoredModel, model_id) is not None:
            raise invalid_request(f"model id '{model_id}' already exists", param="model_info.id")
        row = StoredModel(model_id=model_id)
        store.seal(row, record, _actor(caller))
        session.add(row)
        revision = await store.bump(session)
        await audit.record(session, request, caller, action="model.new", target=model_id, after=record.audit_view())
    await runtime.ops.changed(revision)
    return {"model_id": model_id, **store.info(store.records.get(model_id, record))}


@router.post("/model/update")
async def model_update(body: ModelUpdate, request: Request, runtime: RuntimeDep, caller: Admin) -> JSONObject:
    store = runtime.ops.require_models()
    model_id = body.id or (body.model_info or {}).get("id")
    if not isinstance(model_id, str) or not model_id:
        raise invalid_request("pass the model's id as 'id' (or model_info.id)", param="id")
    store.check_managed(model_id)
    async with runtime.db.session() as session:
        row = await session.get(StoredModel, model_id)
        if row is None:
            raise _not_found(model_id)
        try:
            old = store.open(row)
        except SecretError as exc:
            raise invalid_request(f"model '{model_id}' cannot be updated: {exc}; delete it and add it again") from None
        params = store.merged(old.params, body.litellm_params or {})
        info = store.merged(old.model_info, {k: v for k, v in (body.model_info or {}).items() if k != "id"})
        record, _ = store.record_from(model_id, body.model_name or old.model_name, params, info)
        store.seal(row, record, _actor(caller))
        revision = await store.bump(session)
        await audit.record(
            session,
            request,
            caller,
            action="model.update",
            target=model_id,
            before=old.audit_view(),
            after=record.audit_view(),
        )
    await runtime.ops.changed(revision)
    return {"model_id": model_id, **store.info(store.records.get(model_id, record))}


@router.post("/model/delete")
async def model_delete(body: ModelDelete, request: Request, runtime: RuntimeDep, caller: Admin) -> JSONObject:
    store = runtime.ops.require_models()
    store.check_managed(body.id)
    async with runtime.db.session() as session:
        row = await session.get(StoredModel, body.id)
        if row is None:
            raise _not_found(body.id)
        before: JSONObject = {"model_name": row.model_name}
        if body.id in store.records:
            before = store.records[body.id].audit_view()
        await session.delete(row)
        revision = await store.bump(session)
        await audit.record(session, request, caller, action="model.delete", target=body.id, before=before)
    await runtime.ops.changed(revision)
    return {"deleted": body.id}


@router.get("/model/info")
@router.get("/v1/model/info")
async def model_info(
    runtime: RuntimeDep, caller: Caller, litellm_model_id: str | None = Query(default=None, max_length=64)
) -> JSONObject:
    """Every deployment for the master key; a virtual key sees those of the models it may use."""
    entries = deployment_entries(runtime, caller)
    if litellm_model_id is not None:
        entries = [e for e in entries if (e.get("model_info") or {}).get("id") == litellm_model_id]
    return {"data": entries}
