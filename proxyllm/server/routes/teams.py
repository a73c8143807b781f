"""``/team/*``: teams, their budgets, model access and members."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import update as sql_update

from proxyllm.accounts import store
from proxyllm.accounts.schemas import MemberAdd, MemberDelete, TeamDelete, TeamNew, TeamUpdate, set_fields
from proxyllm.accounts.views import key_view, team_view
from proxyllm.core.bounds import MAX_PAGE
from proxyllm.core.errors import invalid_request
from proxyllm.db.tables import Key, Team, TeamMember
from proxyllm.ops import audit
from proxyllm.server.billing_wiring import link_account
from proxyllm.server.deps import Admin, RuntimeDep

router = APIRouter(tags=["teams"])


def _members(rows: Any) -> list[dict[str, str]]:
    return [{"user_id": m.user_id, "role": m.role} for m in rows]


@router.post("/team/new")
async def new_team(body: TeamNew, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    runtime.check_models(body.models)
    team_id = body.team_id or str(uuid.uuid4())
    await link_account(runtime, ("team", team_id), body.stripe_customer_id)
    async with runtime.db.session() as session:
        if await session.get(Team, team_id) is not None:
            raise invalid_request(f"team '{team_id}' already exists", param="team_id")
        team = Team(team_id=team_id, models=[], metadata_={})
        store.apply_fields(team, set_fields(body, "team_id", "members_with_roles"))
        session.add(team)
        await session.flush()
        for member in body.members_with_roles or ():
            await store.ensure_user(session, member.user_id)
            session.add(TeamMember(team_id=team_id, user_id=member.user_id, role=member.role))
        await session.flush()
        await session.refresh(team)
        view = {**team_view(team), "members_with_roles": _members(await store.team_members(session, team_id))}
        await audit.record(session, request, caller, action="team.new", target=team_id, after=view)
        return view


@router.get("/team/info")
async def team_info(runtime: RuntimeDep, _: Admin, team_id: str = Query()) -> dict[str, Any]:
    async with runtime.db.session() as session:
        team = await store.get_team(session, team_id)
        members = await store.team_members(session, team_id)
        keys = (await store.list_keys(session, page=1, size=1000, user_id=None, team_id=team_id, alias=None))[0]
        return {
            "team_id": team_id,
            "team_info": {**team_view(team), "members_with_roles": _members(members)},
            "keys": [key_view(k) for k in keys],
        }


@router.post("/team/update")
async def update_team(body: TeamUpdate, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    runtime.check_models(body.models)
    await link_account(runtime, ("team", body.team_id), body.stripe_customer_id)
    async with runtime.db.session() as session:
        team = await store.get_team(session, body.team_id)
        before = team_view(team)
        store.apply_fields(team, set_fields(body, "team_id"))
        await session.flush()
        await session.refresh(team)
        view = team_view(team)
        await audit.record(
            session, request, caller, action="team.update", target=team.team_id, before=before, after=view
        )
    runtime.keys.invalidate()
    return view


@router.post("/team/delete")
async def delete_teams(body: TeamDelete, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    async with runtime.db.session() as session:
        teams = [await store.get_team(session, tid) for tid in dict.fromkeys(body.team_ids)]  # once each
        for team in teams:
            await audit.record(
                session, request, caller, action="team.delete", target=team.team_id, before=team_view(team)
            )
            await session.execute(
                sql_update(Key)
                .where(Key.team_id == team.team_id, Key.deleted_at.is_(None))
                .values(deleted_at=datetime.now(UTC), key_alias=None)
            )
            await store.delete_team_members(session, team.team_id)
            await session.delete(team)
    runtime.keys.invalidate()
    return {"deleted_teams": body.team_ids}


@router.get("/team/list")
async def list_teams(
    runtime: RuntimeDep,
    _: Admin,
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    page_size: int = Query(default=100, ge=1, le=500),
) -> list[dict[str, Any]]:
    async with runtime.db.session() as session:
        rows, _total = await store.page_of(session, Team, Team.created_at.desc(), page, page_size)
        return [
            {**team_view(t), "members_with_roles": _members(await store.team_members(session, t.team_id))} for t in rows
        ]


@router.post("/team/member_add")
async def member_add(body: MemberAdd, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    members = body.member if isinstance(body.member, list) else [body.member]
    async with runtime.db.session() as session:
        await store.get_team(session, body.team_id)
        before = {"members_with_roles": _members(await store.team_members(session, body.team_id))}
        for member in members:
            await store.ensure_user(session, member.user_id)
            existing = await session.get(TeamMember, (body.team_id, member.user_id))
            if existing is None:
                session.add(TeamMember(team_id=body.team_id, user_id=member.user_id, role=member.role))
            else:
                existing.role = member.role
        await session.flush()
        after = {"members_with_roles": _members(await store.team_members(session, body.team_id))}
        await audit.record(
            session, request, caller, action="team.member_add", target=body.team_id, before=before, after=after
        )
        return {"team_id": body.team_id, **after}


@router.post("/team/member_delete")
async def member_delete(body: MemberDelete, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    async with runtime.db.session() as session:
        await store.get_team(session, body.team_id)
        before = {"members_with_roles": _members(await store.team_members(session, body.team_id))}
        if not await store.delete_team_members(session, body.team_id, [body.user_id]):
            raise invalid_request(f"user '{body.user_id}' is not a member of team '{body.team_id}'", param="user_id")
        after = {"members_with_roles": _members(await store.team_members(session, body.team_id))}
        await audit.record(
            session, request, caller, action="team.member_delete", target=body.team_id, before=before, after=after
        )
        return {"team_id": body.team_id, **after}
