"""``/key/*``: generate, inspect, update, block, regenerate and delete virtual keys (admin/keys.py)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from proxyllm.accounts import store
from proxyllm.accounts.schemas import KeyDelete, KeyGenerate, KeyRef, KeyUpdate
from proxyllm.accounts.views import key_view
from proxyllm.admin import keys
from proxyllm.admin.shapes import report_ignored
from proxyllm.core.bounds import MAX_ID, MAX_KEY, MAX_PAGE
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.server.deps import AdminActor, AdminPartsDep

router = APIRouter(tags=["keys"])


@router.post("/key/generate")
async def generate(
    body: KeyGenerate, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/key/generate")
    return await keys.generate(parts, request, actor, body)


@router.get("/key/info")
async def info(
    parts: AdminPartsDep, actor: AdminActor, key: str | None = Query(default=None, min_length=1, max_length=MAX_KEY)
) -> JSONObject:
    return await keys.info(parts, actor, key)


@router.post("/key/update")
async def update(
    body: KeyUpdate, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/key/update")
    return await keys.update(parts, request, actor, body)


@router.post("/key/block")
async def block(body: KeyRef, request: Request, parts: AdminPartsDep, actor: AdminActor) -> JSONObject:
    return await keys.set_blocked(parts, request, actor, body.key, True)


@router.post("/key/unblock")
async def unblock(body: KeyRef, request: Request, parts: AdminPartsDep, actor: AdminActor) -> JSONObject:
    return await keys.set_blocked(parts, request, actor, body.key, False)


@router.post("/key/delete")
async def delete(
    body: KeyDelete, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/key/delete")
    return await keys.delete(parts, request, actor, body)


@router.post("/key/regenerate")
@router.post("/key/{key}/regenerate")
async def regenerate(
    request: Request, parts: AdminPartsDep, actor: AdminActor, key: str | None = None, body: KeyRef | None = None
) -> JSONObject:
    target = key or (body.key if body else None)
    if not target or len(target) > MAX_KEY:
        raise invalid_request("pass the key to regenerate", param="key")
    return await keys.regenerate(parts, request, actor, target)


@router.get("/key/list")
async def list_keys(
    parts: AdminPartsDep,
    _: AdminActor,
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    size: int = Query(default=50, ge=1, le=500),
    user_id: str | None = Query(default=None, max_length=MAX_ID),
    team_id: str | None = Query(default=None, max_length=MAX_ID),
    key_alias: str | None = Query(default=None, max_length=MAX_ID),
    return_full_object: bool = False,
) -> JSONObject:
    async with parts.db.session() as session:
        rows, total = await store.list_keys(
            session, page=page, size=size, user_id=user_id, team_id=team_id, alias=key_alias
        )
        found: list[JSONObject | str] = [key_view(r) if return_full_object else r.token for r in rows]
    return {"keys": found, "total_count": total, "current_page": page, "total_pages": -(-total // size)}
