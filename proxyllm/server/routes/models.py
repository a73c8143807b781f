"""``GET /v1/models`` and ``GET /v1/models/{id}``: the model groups this proxy serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from proxyllm.errors import ErrorKind, ProxyError
from proxyllm.server.deps import Caller, RuntimeDep

router = APIRouter(tags=["models"])
CREATED = 1_700_000_000  # model groups have no creation time; a fixed value keeps responses stable


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "proxyllm"}


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
async def list_models(runtime: RuntimeDep, caller: Caller) -> dict[str, Any]:
    return {"object": "list", "data": [_model(name) for name in runtime.router.model_names()]}


@router.get("/v1/models/{model_id:path}")
@router.get("/models/{model_id:path}", include_in_schema=False)
async def get_model(model_id: str, runtime: RuntimeDep, caller: Caller) -> dict[str, Any]:
    if runtime.router.find(model_id) is None:
        raise ProxyError(
            ErrorKind.NOT_FOUND,
            f"model '{model_id}' is not served by this proxy",
            param="model",
            code="model_not_found",
        )
    return _model(model_id)
