"""User services: create (with its first key and teams), read, update, delete."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from proxyllm.accounts import store
from proxyllm.accounts.durations import add_duration
from proxyllm.accounts.keys import generate_key, hash_key, mask_key
from proxyllm.accounts.schemas import UserDelete, UserNew, UserUpdate, set_fields
from proxyllm.accounts.views import key_view, team_view, user_view
from proxyllm.admin.members import members_of
from proxyllm.admin.permissions import Actor
from proxyllm.admin.unit import AdminParts, unit_of_work
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Key, Team, TeamMember, User


async def new_user(parts: AdminParts, request: HTTPConnection, actor: Actor, body: UserNew) -> JSONObject:
    parts.check_models(body.models, "models")
    user_id = body.user_id or str(uuid.uuid4())
    teams = list(dict.fromkeys([*([body.team_id] if body.team_id else []), *(body.teams or [])]))
    raw: str | None = None
    expires: datetime | None = None
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        if await session.get(User, user_id) is not None:
            raise invalid_request(f"user '{user_id}' already exists", param="user_id")
        for team_id in teams:
            await store.get_team(session, team_id)
        await unit.link_billing(("user", user_id), body.stripe_customer_id)
        user = User(user_id=user_id, models=[], metadata_={})
        store.apply_fields(user, set_fields(body, "user_id", "team_id", "teams", "auto_create_key", "duration"))
        session.add(user)
        await session.flush()
        for team_id in teams:
            session.add(TeamMember(team_id=team_id, user_id=user_id, role="user"))
        if body.auto_create_key:
            raw = generate_key()
            expires = add_duration(datetime.now(UTC), body.duration) if body.duration else None
            session.add(
                Key(
                    token=hash_key(raw),
                    key_name=mask_key(raw),
                    user_id=user_id,
                    team_id=body.team_id,
                    models=list(body.models or []),
                    tags=[],
                    metadata_={},
                    expires=expires,
                )
            )
        await session.flush()
        await session.refresh(user)
        view = user_view(user)
        await unit.audit("user.new", user_id, after=view)
    return {
        **view,
        "key": raw,
        "token": hash_key(raw) if raw else None,
        "expires": expires.isoformat() if expires else None,
        "team_id": body.team_id,
        "teams": teams,
    }


async def teams_of(session: AsyncSession, user_id: str) -> list[JSONObject]:
    """The user's teams as team objects, each with its members and the user's role in it."""
    out = []
    for team_id in await store.user_teams(session, user_id):
        team = await session.get(Team, team_id)
        if team is None:
            continue
        members = await members_of(session, team_id)
        role = next((m["role"] for m in members if m["user_id"] == user_id), None)
        out.append({**team_view(team), "members_with_roles": members, "user_role_in_team": role})
    return out


async def info(parts: AdminParts, actor: Actor, user_id: str | None) -> JSONObject:
    user_id = user_id or actor.user_id
    if user_id is None:
        raise invalid_request("pass ?user_id=", param="user_id")
    actor.require(actor.owns_user(user_id), f"user '{user_id}'")
    async with parts.db.session() as session:
        user = await store.get_user(session, user_id)
        keys = await store.user_keys(session, user_id)
        return {
            "user_id": user_id,
            "user_info": user_view(user),
            "keys": [key_view(k) for k in keys],
            "teams": await teams_of(session, user_id),
        }


async def update_user(parts: AdminParts, request: HTTPConnection, actor: Actor, body: UserUpdate) -> JSONObject:
    parts.check_models(body.models, "models")
    async with unit_of_work(parts, request, actor) as unit:
        user = await store.get_user(unit.session, body.user_id)  # a missing user: 404, nothing linked
        await unit.link_billing(("user", body.user_id), body.stripe_customer_id)
        before = user_view(user)
        store.apply_fields(user, set_fields(body, "user_id"))
        await unit.session.flush()
        await unit.session.refresh(user)
        view = user_view(user)
        await unit.audit("user.update", user.user_id, before=before, after=view)
        unit.invalidate()
    return {**view, "data": view}


async def delete_users(parts: AdminParts, request: HTTPConnection, actor: Actor, body: UserDelete) -> JSONObject:
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        users = [await store.get_user(session, uid) for uid in dict.fromkeys(body.user_ids)]  # once each
        for user in users:
            await unit.audit("user.delete", user.user_id, before=user_view(user))
            await session.execute(
                sql_update(Key)
                .where(Key.user_id == user.user_id, Key.deleted_at.is_(None))
                .values(deleted_at=datetime.now(UTC), key_alias=None)
            )
            await session.execute(sql_delete(TeamMember).where(TeamMember.user_id == user.user_id))
            await session.delete(user)
        unit.invalidate()
    return {"deleted_users": body.user_ids}
