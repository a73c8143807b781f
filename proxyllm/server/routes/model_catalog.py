"""``/model_group/info`` and ``/v2/model/info``: what each model group offers, in LiteLLM's shapes.

Any key may call them and sees the models it may use (the master key sees every one). Prices and
limits come from the deployments' ``litellm_params`` and ``model_info``; where the deployments of a
group differ, the group shows the most any of them allows (tokens, rpm, tpm) and the highest price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Query

from proxyllm.accounts.hooks import visible
from proxyllm.core.bounds import MAX_ID
from proxyllm.core.context import Principal
from proxyllm.core.deployment import Deployment
from proxyllm.core.jsontypes import JSONArray, JSONObject, JSONValue
from proxyllm.core.requests import FIELD_TYPES
from proxyllm.core.types import Operation
from proxyllm.server.deps import Caller, RuntimeDep
from proxyllm.server.runtime import Runtime

router = APIRouter(tags=["models"])
BODY_FIELDS = frozenset({"model", "messages", "prompt", "input"})
MODES = {"chat": Operation.CHAT, "completion": Operation.COMPLETION, "embedding": Operation.EMBEDDING}
CAPABILITIES = (
    "supports_parallel_function_calling",
    "supports_vision",
    "supports_function_calling",
    "supports_web_search",
    "supports_reasoning",
    "supports_response_schema",
    "supports_tool_choice",
)


def mode_of(dep: Deployment) -> str:
    mode = dep.model_info.get("mode")
    return mode if isinstance(mode, str) and mode else "chat"


def supported_params(mode: str) -> list[str]:
    operation = MODES.get(mode)
    if operation is None:
        return []
    return sorted(name for name in FIELD_TYPES[operation] if name not in BODY_FIELDS)


def _number(values: JSONArray) -> JSONValue:
    found = [v for v in values if isinstance(v, int | float | Decimal) and not isinstance(v, bool)]
    return max(found) if found else None


def _price(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def group_info(name: str, deployments: list[Deployment]) -> JSONObject:
    info = [d.model_info for d in deployments]
    mode = mode_of(deployments[0])
    entry: JSONObject = {
        "model_group": name,
        "providers": sorted({d.provider.name for d in deployments}),
        "max_input_tokens": _number([i.get("max_input_tokens") or i.get("max_tokens") for i in info]),
        "max_output_tokens": _number([i.get("max_output_tokens") for i in info]),
        "input_cost_per_token": _price(_number([d.input_cost_per_token for d in deployments])),
        "output_cost_per_token": _price(_number([d.output_cost_per_token for d in deployments])),
        "mode": mode,
        "tpm": _number([d.tpm for d in deployments]),
        "rpm": _number([d.rpm for d in deployments]),
        "supported_openai_params": supported_params(mode),
        "configurable_clientside_auth_params": None,
        "access_groups": sorted({g for i in info for g in (i.get("access_groups") or []) if isinstance(g, str)}),
    }
    for capability in CAPABILITIES:
        entry[capability] = any(i.get(capability) is True for i in info)
    return entry


@router.get("/model_group/info")
async def model_group_info(
    runtime: RuntimeDep, caller: Caller, model_group: str | None = Query(default=None, max_length=MAX_ID)
) -> JSONObject:
    groups = runtime.router.groups
    names = [n for n in sorted(groups) if visible(runtime.router, caller, n)]
    if model_group is not None:
        names = [n for n in names if n == model_group]
    return {"data": [group_info(n, groups[n].deployments) for n in names if groups[n].deployments]}


def deployment_entries(runtime: Runtime, caller: Principal) -> list[JSONObject]:
    """``/model/info`` entries: every deployment for the master key; for a virtual key, those of the
    models it may use, without addresses or credentials."""
    entries: list[JSONObject] = runtime.ops.model_info()
    if caller.auth is None:
        return entries
    allowed = []
    for entry in entries:
        name = entry.get("model_name")
        if isinstance(name, str) and visible(runtime.router, caller, name):
            params = entry.get("litellm_params") or {}
            allowed.append(
                {
                    "model_name": name,
                    "litellm_params": {"model": params.get("model")},
                    "model_info": {**(entry.get("model_info") or {})},
                }
            )
    return allowed


@router.get("/v2/model/info")
async def model_info_v2(
    runtime: RuntimeDep,
    caller: Caller,
    model: str | None = Query(default=None, max_length=MAX_ID),
    model_id: str | None = Query(default=None, alias="modelId", max_length=64),
    search: str | None = Query(default=None, max_length=MAX_ID),
    sort_by: Literal["model_name", "created_at", "updated_at"] | None = Query(default=None, alias="sortBy"),
    sort_order: Literal["asc", "desc"] = Query(default="asc", alias="sortOrder"),
    page: int = Query(default=1, ge=1, le=1_000_000),
    size: int = Query(default=50, ge=1, le=1000),
) -> JSONObject:
    entries = deployment_entries(runtime, caller)
    if model is not None:
        entries = [e for e in entries if e.get("model_name") == model]
    if model_id is not None:
        entries = [e for e in entries if (e.get("model_info") or {}).get("id") == model_id]
    if search:
        needle = search.lower()
        entries = [e for e in entries if needle in str(e.get("model_name", "")).lower()]
    if sort_by is not None:
        field = sort_by

        def key(entry: JSONObject) -> str:
            value = entry.get("model_name") if field == "model_name" else (entry.get("model_info") or {}).get(field)
            return str(value or "")

        entries.sort(key=key, reverse=sort_order == "desc")
    total = len(entries)
    start = (page - 1) * size
    return {
        "data": entries[start : start + size],
        "total_count": total,
        "current_page": page,
        "total_pages": (total + size - 1) // size,
        "size": size,
    }
