"""Team services: create, read, update, delete, and members (add, update, delete)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from proxyllm.accounts import store
from proxyllm.accounts.schemas import (
    Member,
    MemberAdd,
    MemberDelete,
    MemberUpdate,
    TeamDelete,
    TeamNew,
    TeamUpdate,
    set_fields,
)
from proxyllm.accounts.views import key_view, team_view, user_view
from proxyllm.admin.members import members_of, resolve_existing, resolve_or_create
from proxyllm.admin.permissions import Actor
from proxyllm.admin.unit import AdminParts, Unit, unit_of_work
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Key, Team, TeamMember

# What a team's own admin may change on it; budgets, limits, models and billing stay the proxy admin's.
TEAM_ADMIN_FIELDS = frozenset({"team_id", "team_alias", "metadata", "model_aliases", "tags"})


async def _team_object(session: AsyncSession, team: Team) -> JSONObject:
    return {**team_view(team), "members_with_roles": await members_of(session, team.team_id)}


async def _add_members(unit: Unit, team_id: str, members: list[Member]) -> list[tuple[str, str]]:
    """Add members (users created as needed); a user already in the team is a 400, as in LiteLLM."""
    added: list[tuple[str, str]] = []
    for member in members:
        user = await resolve_or_create(unit.session, member)
        if await unit.session.get(TeamMember, (team_id, user.user_id)) is not None or any(
            uid == user.user_id for uid, _ in added
        ):
            raise ProxyError(
                ErrorKind.INVALID_REQUEST,
                f"user '{user.user_id}' is already a member of team '{team_id}'; "
                "change its role with /team/member_update",
                param="member",
                code="team_member_already_in_team",
            )
        unit.session.add(TeamMember(team_id=team_id, user_id=user.user_id, role=member.role))
        added.append((user.user_id, member.role))
    await unit.session.flush()
    return added


async def new_team(parts: AdminParts, request: HTTPConnection, actor: Actor, body: TeamNew) -> JSONObject:
    parts.check_models(body.models, "models")
    parts.check_models(list((body.model_aliases or {}).values()), "model_aliases")
    team_id = body.team_id or str(uuid.uuid4())
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        if await session.get(Team, team_id) is not None:
            raise invalid_request(f"team '{team_id}' already exists", param="team_id")
        await unit.link_billing(("team", team_id), body.stripe_customer_id)
        team = Team(team_id=team_id, models=[], metadata_={})
        store.apply_fields(team, set_fields(body, "team_id", "members_with_roles"), store.TEAM_METADATA_FIELDS)
        session.add(team)
        await session.flush()
        await _add_members(unit, team_id, list(body.members_with_roles or ()))
        await session.refresh(team)
        view = await _team_object(session, team)
        await unit.audit("team.new", team_id, after=view)
    return view


async def info(parts: AdminParts, actor: Actor, team_id: str) -> JSONObject:
    actor.require(actor.owns_team(team_id), f"team '{team_id}'")
    async with parts.db.session() as session:
        team = await store.get_team(session, team_id)
        keys = (await store.list_keys(session, page=1, size=1000, user_id=None, team_id=team_id, alias=None))[0]
        return {"team_id": team_id, "team_info": await _team_object(session, team), "keys": [key_view(k) for k in keys]}


async def update_team(parts: AdminParts, request: HTTPConnection, actor: Actor, body: TeamUpdate) -> JSONObject:
    parts.check_models(body.models, "models")
    parts.check_models(list((body.model_aliases or {}).values()), "model_aliases")
    actor.require(actor.owns_team(body.team_id), f"team '{body.team_id}'")
    fields = set_fields(body, "team_id")
    if not actor.sees_everything:
        refused = sorted(set(fields) - TEAM_ADMIN_FIELDS)
        if refused:
            raise actor.refuse(f"the fields {refused} (a team admin changes only {sorted(TEAM_ADMIN_FIELDS)})")
    async with unit_of_work(parts, request, actor) as unit:
        team = await store.get_team(unit.session, body.team_id)  # a missing team: 404, nothing linked
        await unit.link_billing(("team", body.team_id), body.stripe_customer_id)
        before = team_view(team)
        store.apply_fields(team, fields, store.TEAM_METADATA_FIELDS)
        await unit.session.flush()
        await unit.session.refresh(team)
        view = team_view(team)
        await unit.audit("team.update", team.team_id, before=before, after=view)
        unit.invalidate()
    return {"team_id": body.team_id, "data": view}


async def delete_teams(parts: AdminParts, request: HTTPConnection, actor: Actor, body: TeamDelete) -> JSONObject:
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        teams = [await store.get_team(session, tid) for tid in dict.fromkeys(body.team_ids)]  # once each
        for team in teams:
            await unit.audit("team.delete", team.team_id, before=team_view(team))
            await session.execute(
                sql_update(Key)
                .where(Key.team_id == team.team_id, Key.deleted_at.is_(None))
                .values(deleted_at=datetime.now(UTC), key_alias=None)
            )
            await store.delete_team_members(session, team.team_id)
            await session.delete(team)
        unit.invalidate()
    return {"deleted_teams": body.team_ids}


async def member_add(parts: AdminParts, request: HTTPConnection, actor: Actor, body: MemberAdd) -> JSONObject:
    actor.require(actor.owns_team(body.team_id), f"team '{body.team_id}'")
    members = body.member if isinstance(body.member, list) else [body.member]
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        team = await store.get_team(session, body.team_id)
        before = {"members_with_roles": await members_of(session, body.team_id)}
        added = await _add_members(unit, body.team_id, members)
        view = await _team_object(session, team)
        await unit.audit(
            "team.member_add", body.team_id, before=before, after={"members_with_roles": view["members_with_roles"]}
        )
        users = [await store.get_user(session, uid) for uid, _ in added]
    return {
        **view,
        "updated_users": [user_view(u) for u in users],
        "updated_team_memberships": [{"user_id": uid, "team_id": body.team_id, "role": role} for uid, role in added],
    }


async def _membership(session: AsyncSession, team_id: str, body: MemberUpdate | MemberDelete) -> TeamMember:
    user = await resolve_existing(session, body)
    member = await session.get(TeamMember, (team_id, user.user_id))
    if member is None:
        raise invalid_request(f"user '{user.user_id}' is not a member of team '{team_id}'", param="user_id")
    return member


async def member_update(parts: AdminParts, request: HTTPConnection, actor: Actor, body: MemberUpdate) -> JSONObject:
    actor.require(actor.owns_team(body.team_id), f"team '{body.team_id}'")
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        await store.get_team(session, body.team_id)
        member = await _membership(session, body.team_id, body)
        before = {"user_id": member.user_id, "role": member.role}
        if body.role is not None:
            member.role = body.role
        await session.flush()
        user = await store.get_user(session, member.user_id)
        after = {"user_id": member.user_id, "role": member.role}
        await unit.audit("team.member_update", body.team_id, before=before, after=after)
    return {"team_id": body.team_id, "user_id": user.user_id, "user_email": user.user_email, "role": after["role"]}


async def member_delete(parts: AdminParts, request: HTTPConnection, actor: Actor, body: MemberDelete) -> JSONObject:
    actor.require(actor.owns_team(body.team_id), f"team '{body.team_id}'")
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        await store.get_team(session, body.team_id)
        before = {"members_with_roles": await members_of(session, body.team_id)}
        member = await _membership(session, body.team_id, body)
        await session.delete(member)
        await session.flush()
        after = {"members_with_roles": await members_of(session, body.team_id)}
        await unit.audit("team.member_delete", body.team_id, before=before, after=after)
    return {"team_id": body.team_id, **after}
