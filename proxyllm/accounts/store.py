"""Database access for keys, users and teams. Keyword-only functions over an AsyncSession."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.accounts.durations import next_reset
from proxyllm.core import clock
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.db.tables import Base, Key, Team, TeamMember, User

Row = TypeVar("Row", bound=Base)
Order = TypeVar("Order")

BUDGET_FIELDS = (
    "max_budget",
    "budget_duration",
    "models",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "blocked",
)


def now() -> datetime:
    return clock.now()


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def not_found(what: str, ident: str, param: str) -> ProxyError:
    return ProxyError(ErrorKind.NOT_FOUND, f"{what} '{ident}' does not exist", param=param)


# Key fields without a column of their own: they live in the key's metadata (where LiteLLM puts them too).
METADATA_FIELDS = ("model_rpm_limit", "model_tpm_limit", "allowed_cache_controls", "aliases")
# Team fields LiteLLM keeps in columns or tables proxyllm does not have: kept in the team's metadata.
TEAM_METADATA_FIELDS = ("model_aliases", "tags", "team_member_permissions", "organization_id")


def apply_fields(
    row: Key | User | Team, fields: Mapping[str, object], metadata_fields: tuple[str, ...] = METADATA_FIELDS
) -> None:
    """Copy API fields onto a row; a new budget_duration restarts the budget period."""
    for name, value in fields.items():
        if name not in metadata_fields:
            setattr(row, "metadata_" if name == "metadata" else name, value)
    in_metadata = {name: fields[name] for name in metadata_fields if name in fields}
    if in_metadata:  # merged into the metadata; null removes the field
        merged = {**(row.metadata_ or {}), **in_metadata}
        row.metadata_ = {k: v for k, v in merged.items() if k not in in_metadata or v is not None}
    if "budget_duration" in fields:
        duration = fields["budget_duration"]
        row.budget_reset_at = next_reset(now(), str(duration)) if duration else None


async def get_key(session: AsyncSession, token: str, *, include_deleted: bool = False) -> Key:
    key = await session.get(Key, token)
    if key is None or (key.deleted_at is not None and not include_deleted):
        raise not_found("key", token[:12] + "...", "key")
    return key


async def key_by_alias(session: AsyncSession, alias: str) -> Key | None:
    result = await session.execute(select(Key).where(Key.key_alias == alias, Key.deleted_at.is_(None)))
    return result.scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id, "user_id")
    return user


async def get_team(session: AsyncSession, team_id: str) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise not_found("team", team_id, "team_id")
    return team


async def ensure_user(session: AsyncSession, user_id: str, email: str | None = None) -> User:
    """The user, created (role internal_user) if it does not exist. Concurrent calls creating the same
    user do not conflict: the INSERT does nothing when the row exists or is being inserted."""
    user = await session.get(User, user_id)
    if user is not None:
        return user
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(User)
    await session.execute(
        insert.values(user_id=user_id, user_email=email, models=[], metadata_={}).on_conflict_do_nothing(
            index_elements=["user_id"]
        )
    )
    user = await session.get(User, user_id, populate_existing=True)
    assert user is not None
    return user


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    rows = await session.execute(select(User).where(User.user_email == email).order_by(User.created_at).limit(2))
    found = rows.scalars().all()
    if len(found) > 1:
        raise invalid_request(f"more than one user has email '{email}'; give 'user_id'", param="user_email")
    return found[0] if found else None


async def check_alias_free(session: AsyncSession, alias: str | None, token: str | None = None) -> None:
    if alias is None:
        return
    other = await key_by_alias(session, alias)
    if other is not None and other.token != token:
        raise invalid_request(f"key_alias '{alias}' is already used by another key", param="key_alias")


async def list_keys(
    session: AsyncSession, *, page: int, size: int, user_id: str | None, team_id: str | None, alias: str | None
) -> tuple[Sequence[Key], int]:
    query = select(Key).where(Key.deleted_at.is_(None))
    if user_id:
        query = query.where(Key.user_id == user_id)
    if team_id:
        query = query.where(Key.team_id == team_id)
    if alias:
        query = query.where(Key.key_alias.contains(alias))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(Key.created_at.desc(), Key.token).offset((page - 1) * size).limit(size))
    return rows.scalars().all(), total


async def user_keys(session: AsyncSession, user_id: str) -> Sequence[Key]:
    rows = await session.execute(select(Key).where(Key.user_id == user_id, Key.deleted_at.is_(None)))
    return rows.scalars().all()


async def team_members(session: AsyncSession, team_id: str) -> Sequence[TeamMember]:
    rows = await session.execute(select(TeamMember).where(TeamMember.team_id == team_id))
    return rows.scalars().all()


async def user_teams(session: AsyncSession, user_id: str) -> Sequence[str]:
    rows = await session.execute(select(TeamMember.team_id).where(TeamMember.user_id == user_id))
    return rows.scalars().all()


async def delete_team_members(session: AsyncSession, team_id: str, user_ids: Sequence[str] | None = None) -> int:
    stmt = delete(TeamMember).where(TeamMember.team_id == team_id)
    if user_ids is not None:
        stmt = stmt.where(TeamMember.user_id.in_(user_ids))
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


async def page_of(
    session: AsyncSession, model: type[Row], order: ColumnElement[Order], page: int, size: int
) -> tuple[Sequence[Row], int]:
    total = (await session.execute(select(func.count()).select_from(model))).scalar_one()
    rows = await session.execute(select(model).order_by(order).offset((page - 1) * size).limit(size))
    return rows.scalars().all(), total
