"""``GET /v1/models`` and ``GET /v1/models/{id}``: the model groups this proxy serves."""

from __future__ import annotations

from fastapi import APIRouter

from proxyllm.accounts.hooks import visible
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.server.deps import Caller, RuntimeDep

router = APIRouter(tags=["models"])
CREATED = 1_700_000_000  # model groups have no creation time; a fixed value keeps responses stable


def _model(name: str) -> JSONObject:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "proxyllm"}


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
async def list_models(runtime: RuntimeDep, caller: Caller) -> JSONObject:
    names = [name for name in runtime.router.model_names() if visible(runtime.router, caller, name)]
    auth = caller.auth
    if auth is not None:
        for alias, target in auth.model_aliases.items():  # the team's aliases, where the key may use the target
            group = runtime.router.find(target)
            if alias not in names and group is not None and auth.may_use(alias, group.name, group.access_groups):
                names.append(alias)
    return {"object": "list", "data": [_model(name) for name in names]}


@router.get("/v1/models/{model_id:path}")
@router.get("/models/{model_id:path}", include_in_schema=False)
async def get_model(model_id: str, runtime: RuntimeDep, caller: Caller) -> JSONObject:
    if runtime.router.find(model_id) is None or not visible(runtime.router, caller, model_id):
        raise ProxyError(
            ErrorKind.NOT_FOUND,
            f"model '{model_id}' is not served by this proxy",
            param="model",
            code="model_not_found",
        )
    return _model(model_id)
