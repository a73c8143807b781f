"""``GET`` / ``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``: stored responses.

Only the key that created a response sees it; for any other key it does not exist (404).
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from proxyllm.accounts.auth import key_from_headers
from proxyllm.core.jsontypes import JSONValue
from proxyllm.frontends.responses.request import check_id
from proxyllm.frontends.responses.store import ResponseStore, owner_of

router = APIRouter(tags=["responses"])


async def _owner(request: Request) -> str:
    runtime = request.app.state.runtime
    principal = await runtime.auth.authenticate(key_from_headers(request.scope["headers"]))
    return owner_of(principal)


def _store(request: Request) -> ResponseStore:
    store: ResponseStore = request.app.state.response_store
    return store


def _json(data: JSONValue) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@router.get("/v1/responses/{response_id}")
@router.get("/responses/{response_id}", include_in_schema=False)
async def get_response(request: Request, response_id: str) -> Response:
    owner = await _owner(request)
    stored = await _store(request).get(owner, check_id(response_id, "response_id"))
    return _json(stored.response)


@router.delete("/v1/responses/{response_id}")
@router.delete("/responses/{response_id}", include_in_schema=False)
async def delete_response(request: Request, response_id: str) -> Response:
    owner = await _owner(request)
    await _store(request).delete(owner, check_id(response_id, "response_id"))
    return _json({"id": response_id, "object": "response", "deleted": True})


@router.get("/v1/responses/{response_id}/input_items")
@router.get("/responses/{response_id}/input_items", include_in_schema=False)
async def input_items(
    request: Request,
    response_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: Annotated[str | None, Query(max_length=160)] = None,
) -> Response:
    owner = await _owner(request)
    stored = await _store(request).get(owner, check_id(response_id, "response_id"))
    items = stored.input_items if order == "asc" else list(reversed(stored.input_items))
    if after is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return _json(
        {
            "object": "list",
            "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(items) > limit,
        }
    )
