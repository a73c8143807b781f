"""``/user/*``: internal users, their budgets and their keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update

from proxyllm.accounts import store
from proxyllm.accounts.keys import generate_key, hash_key, mask_key
from proxyllm.accounts.schemas import UserDelete, UserNew, UserUpdate, set_fields
from proxyllm.accounts.views import key_view, user_view
from proxyllm.core.bounds import MAX_PAGE
from proxyllm.core.errors import invalid_request
from proxyllm.db.tables import Key, TeamMember, User
from proxyllm.ops import audit
from proxyllm.server.billing_wiring import link_account
from proxyllm.server.deps import Admin, RuntimeDep

router = APIRouter(tags=["users"])


@router.post("/user/new")
async def new_user(body: UserNew, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    runtime.check_models(body.models)
    user_id = body.user_id or str(uuid.uuid4())
    await link_account(runtime, ("user", user_id), body.stripe_customer_id)
    raw: str | None = None
    async with runtime.db.session() as session:
        if await session.get(User, user_id) is not None:
            raise invalid_request(f"user '{user_id}' already exists", param="user_id")
        if body.team_id:
            await store.get_team(session, body.team_id)
        user = User(user_id=user_id, models=[], metadata_={})
        store.apply_fields(user, set_fields(body, "user_id", "team_id", "auto_create_key"))
        session.add(user)
        if body.team_id:
            session.add(TeamMember(team_id=body.team_id, user_id=user_id, role="user"))
        if body.auto_create_key:
            raw = generate_key()
            session.add(
                Key(
                    token=hash_key(raw),
                    key_name=mask_key(raw),
                    user_id=user_id,
                    team_id=body.team_id,
                    models=list(body.models or []),
                    tags=[],
                    metadata_={},
                )
            )
        await session.flush()
        await session.refresh(user)
        view = user_view(user)
        await audit.record(session, request, caller, action="user.new", target=user_id, after=view)
    return {**view, "key": raw, "team_id": body.team_id}


@router.get("/user/info")
async def user_info(runtime: RuntimeDep, _: Admin, user_id: str = Query()) -> dict[str, Any]:
    async with runtime.db.session() as session:
        user = await store.get_user(session, user_id)
        keys = await store.user_keys(session, user_id)
        teams = await store.user_teams(session, user_id)
        return {
            "user_id": user_id,
            "user_info": user_view(user),
            "keys": [key_view(k) for k in keys],
            "teams": list(teams),
        }


@router.post("/user/update")
async def update_user(body: UserUpdate, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    runtime.check_models(body.models)
    await link_account(runtime, ("user", body.user_id), body.stripe_customer_id)
    async with runtime.db.session() as session:
        user = await store.get_user(session, body.user_id)
        before = user_view(user)
        store.apply_fields(user, set_fields(body, "user_id"))
        await session.flush()
        await session.refresh(user)
        view = user_view(user)
        await audit.record(
            session, request, caller, action="user.update", target=user.user_id, before=before, after=view
        )
    runtime.keys.invalidate()
    return view


@router.post("/user/delete")
async def delete_users(body: UserDelete, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    async with runtime.db.session() as session:
        users = [await store.get_user(session, uid) for uid in dict.fromkeys(body.user_ids)]  # once each
        for user in users:
            await audit.record(
                session, request, caller, action="user.delete", target=user.user_id, before=user_view(user)
            )
            await session.execute(
                sql_update(Key)
                .where(Key.user_id == user.user_id, Key.deleted_at.is_(None))
                .values(deleted_at=datetime.now(UTC), key_alias=None)
            )
            await session.execute(sql_delete(TeamMember).where(TeamMember.user_id == user.user_id))
            await session.delete(user)
    runtime.keys.invalidate()
    return {"deleted_users": body.user_ids}


@router.get("/user/list")
async def list_users(
    runtime: RuntimeDep,
    _: Admin,
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    page_size: int = Query(default=25, ge=1, le=500),
) -> dict[str, Any]:
    async with runtime.db.session() as session:
        rows, total = await store.page_of(session, User, User.created_at.desc(), page, page_size)
        users = [user_view(u) for u in rows]
    return {"users": users, "total": total, "page": page, "page_size": page_size, "total_pages": -(-total // page_size)}
