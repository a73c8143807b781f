"""Team members: who they are (by user_id or user_email) and how they are shown."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.accounts import store
from proxyllm.accounts.schemas import MemberRef
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import TeamMember, User


async def members_of(session: AsyncSession, team_id: str) -> list[JSONObject]:
    rows = await session.execute(
        select(TeamMember.user_id, TeamMember.role, User.user_email)
        .outerjoin(User, User.user_id == TeamMember.user_id)
        .where(TeamMember.team_id == team_id)
        .order_by(TeamMember.user_id)
    )
    return [{"user_id": uid, "user_email": email, "role": role} for uid, role, email in rows.all()]


async def find_user(session: AsyncSession, ref: MemberRef) -> User | None:
    """The user a member reference names (by id first, else by email), or None."""
    if ref.user_id is not None:
        user = await session.get(User, ref.user_id)
        if user is not None and ref.user_email is not None and user.user_email not in (None, ref.user_email):
            raise invalid_request(f"user '{ref.user_id}' has another email than '{ref.user_email}'", param="user_email")
        return user
    assert ref.user_email is not None
    return await store.user_by_email(session, ref.user_email)


async def resolve_or_create(session: AsyncSession, ref: MemberRef) -> User:
    """The member's user, created if it does not exist yet (as LiteLLM does); an email-only member
    gets a new user id."""
    user = await find_user(session, ref)
    if user is not None:
        return user
    return await store.ensure_user(session, ref.user_id or str(uuid.uuid4()), ref.user_email)


async def resolve_existing(session: AsyncSession, ref: MemberRef) -> User:
    user = await find_user(session, ref)
    if user is None:
        raise store.not_found("user", ref.user_id or ref.user_email or "", "user_id" if ref.user_id else "user_email")
    return user
