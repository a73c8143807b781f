"""``/user/*``: internal users, their budgets, keys and teams (admin/users.py)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from proxyllm.accounts import store
from proxyllm.accounts.schemas import UserDelete, UserNew, UserUpdate
from proxyllm.accounts.views import user_view
from proxyllm.admin import users
from proxyllm.admin.shapes import report_ignored
from proxyllm.core.bounds import MAX_ID, MAX_PAGE
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import User
from proxyllm.server.deps import AdminActor, AdminPartsDep

router = APIRouter(tags=["users"])


@router.post("/user/new")
async def new_user(
    body: UserNew, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/user/new")
    return await users.new_user(parts, request, actor, body)


@router.get("/user/info")
async def user_info(
    parts: AdminPartsDep, actor: AdminActor, user_id: str | None = Query(default=None, min_length=1, max_length=MAX_ID)
) -> JSONObject:
    return await users.info(parts, actor, user_id)


@router.post("/user/update")
async def update_user(
    body: UserUpdate, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/user/update")
    return await users.update_user(parts, request, actor, body)


@router.post("/user/delete")
async def delete_users(
    body: UserDelete, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/user/delete")
    return await users.delete_users(parts, request, actor, body)


@router.get("/user/list")
async def list_users(
    parts: AdminPartsDep,
    _: AdminActor,
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    page_size: int = Query(default=25, ge=1, le=500),
) -> JSONObject:
    async with parts.db.session() as session:
        rows, total = await store.page_of(session, User, User.created_at.desc(), page, page_size)
        found = [user_view(u) for u in rows]
    return {"users": found, "total": total, "page": page, "page_size": page_size, "total_pages": -(-total // page_size)}
