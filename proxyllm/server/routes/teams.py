"""``/team/*``: teams, their budgets, model access and members (admin/teams.py)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from proxyllm.accounts import store
from proxyllm.accounts.schemas import MemberAdd, MemberDelete, MemberUpdate, TeamDelete, TeamNew, TeamUpdate
from proxyllm.accounts.views import team_view
from proxyllm.admin import teams
from proxyllm.admin.members import members_of
from proxyllm.admin.shapes import report_ignored
from proxyllm.core.bounds import MAX_ID, MAX_PAGE
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Team
from proxyllm.server.deps import AdminActor, AdminPartsDep

router = APIRouter(tags=["teams"])


@router.post("/team/new")
async def new_team(
    body: TeamNew, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/team/new")
    return await teams.new_team(parts, request, actor, body)


@router.get("/team/info")
async def team_info(
    parts: AdminPartsDep, actor: AdminActor, team_id: str = Query(min_length=1, max_length=MAX_ID)
) -> JSONObject:
    return await teams.info(parts, actor, team_id)


@router.post("/team/update")
async def update_team(
    body: TeamUpdate, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/team/update")
    return await teams.update_team(parts, request, actor, body)


@router.post("/team/delete")
async def delete_teams(
    body: TeamDelete, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/team/delete")
    return await teams.delete_teams(parts, request, actor, body)


@router.get("/team/list")
async def list_teams(
    parts: AdminPartsDep,
    _: AdminActor,
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    page_size: int = Query(default=100, ge=1, le=500),
) -> list[JSONObject]:
    async with parts.db.session() as session:
        rows, _total = await store.page_of(session, Team, Team.created_at.desc(), page, page_size)
        return [{**team_view(t), "members_with_roles": await members_of(session, t.team_id)} for t in rows]


@router.post("/team/member_add")
async def member_add(
    body: MemberAdd, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/team/member_add")
    return await teams.member_add(parts, request, actor, body)


@router.post("/team/member_update")
async def member_update(
    body: MemberUpdate, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/team/member_update")
    return await teams.member_update(parts, request, actor, body)


@router.post("/team/member_delete")
async def member_delete(
    body: MemberDelete, request: Request, response: Response, parts: AdminPartsDep, actor: AdminActor
) -> JSONObject:
    report_ignored(body, response, "/team/member_delete")
    return await teams.member_delete(parts, request, actor, body)
