"""Who the caller of an admin route is: its role, and for a key its user's team memberships."""

from __future__ import annotations

from sqlalchemy import select

from proxyllm.admin.permissions import USER_ROLES, Actor, Role
from proxyllm.core.context import Principal
from proxyllm.db.database import Database
from proxyllm.db.tables import TeamMember, User


async def actor_of(principal: Principal, db: Database) -> Actor:
    """The master key (or an open proxy) is a proxy admin; a virtual key acts with its user's
    ``user_role`` (read fresh: a role change applies at once) or, without a user, as itself."""
    if principal.kind != "key":
        return Actor(principal=principal, role=Role.PROXY_ADMIN)
    role, teams = Role.KEY, {}
    if principal.user_id is not None:
        async with db.session() as session:
            user_role = (
                await session.execute(select(User.user_role).where(User.user_id == principal.user_id))
            ).scalar_one_or_none()
            if user_role is not None:
                role = USER_ROLES.get(user_role, Role.INTERNAL_USER_VIEWER)
                rows = await session.execute(
                    select(TeamMember.team_id, TeamMember.role).where(TeamMember.user_id == principal.user_id)
                )
                teams = {team_id: member_role for team_id, member_role in rows.all()}
    return Actor(
        principal=principal,
        role=role,
        user_id=principal.user_id if role is not Role.KEY else None,
        key_hash=principal.key_hash,
        key_team=principal.team_id,
        teams=teams,
    )
