"""Key services: generate, update, block, delete, regenerate, and what a caller may read of a key."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from proxyllm.accounts import store
from proxyllm.accounts.durations import add_duration
from proxyllm.accounts.keys import check_custom_key, generate_key, hash_key, mask_key, token_of
from proxyllm.accounts.records import ALL_MODELS
from proxyllm.accounts.schemas import KeyDelete, KeyGenerate, KeyUpdate, set_fields
from proxyllm.accounts.views import key_view
from proxyllm.admin.permissions import Actor
from proxyllm.admin.unit import AdminParts, unit_of_work
from proxyllm.core.clients import check_key_metadata
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import Key, Team


async def _check_owner(session: AsyncSession, body: KeyGenerate | KeyUpdate) -> None:
    """The key's team exists and allows the key's models; its user exists (created if new)."""
    if body.team_id:
        team = await session.get(Team, body.team_id)
        if team is None:
            raise invalid_request(f"team '{body.team_id}' does not exist; create it with /team/new", param="team_id")
        team_models = [m for m in (team.models or []) if m not in ALL_MODELS]
        if team_models and len(team_models) == len(team.models or []) and body.models:
            outside = [m for m in body.models if m not in team_models and m not in ALL_MODELS]
            if outside or any(m in ALL_MODELS for m in body.models):
                raise invalid_request(
                    f"models {outside or body.models} are not among team '{body.team_id}''s models {team_models}; "
                    "a team's key may use only the team's models",
                    param="models",
                )
    if body.user_id:
        await store.ensure_user(session, body.user_id)


def _check_assignable(actor: Actor, user_id: str | None, current: str | None = None) -> None:
    """A key made or changed by a non-admin belongs to no one else than before, or to the caller's own
    user: a team admin cannot hand out (or take) a key of another user, which could be an admin."""
    if not actor.sees_everything and user_id not in (None, actor.user_id, current):
        raise actor.refuse(f"a key of user '{user_id}' (its keys belong to its own user)")


def _key_fields(body: KeyGenerate | KeyUpdate) -> dict[str, object]:
    return set_fields(body, "key", "duration")


def _check_input(parts: AdminParts, body: KeyGenerate | KeyUpdate) -> None:
    parts.check_models(body.models, "models")
    parts.check_models(list((body.aliases or {}).values()), "aliases")
    check_key_metadata(body.metadata)


async def generate(parts: AdminParts, request: HTTPConnection, actor: Actor, body: KeyGenerate) -> JSONObject:
    _check_input(parts, body)
    if not actor.sees_everything and body.user_id is None:
        body.user_id = actor.user_id  # a user's own key, as LiteLLM does for internal users
    _check_assignable(actor, body.user_id)
    actor.require(actor.owns_key(None, body.user_id, body.team_id), f"a key of user '{body.user_id}'")
    raw = check_custom_key(body.key) if body.key else generate_key()
    token = hash_key(raw)
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        await _check_owner(session, body)
        await store.check_alias_free(session, body.key_alias)
        if await session.get(Key, token) is not None:
            raise invalid_request("this key already exists", param="key")
        key = Key(token=token, key_name=mask_key(raw), models=[], tags=[], metadata_={})
        store.apply_fields(key, _key_fields(body))
        if body.user_id is not None:
            key.user_id = body.user_id
        if body.duration:
            key.expires = add_duration(datetime.now(UTC), body.duration)
        session.add(key)
        await session.flush()
        await session.refresh(key)
        view = key_view(key)
        await unit.audit("key.generate", token, after=view)
        unit.invalidate(token)
    return {"key": raw, **view}


async def _owned_key(session: AsyncSession, actor: Actor, token: str) -> Key:
    key = await store.get_key(session, token)
    actor.require(actor.owns_key(key.token, key.user_id, key.team_id), f"key '{token[:12]}...'")
    return key


async def info(parts: AdminParts, actor: Actor, key: str | None) -> JSONObject:
    if key is None:
        if actor.key_hash is None:
            raise invalid_request("pass ?key=<key or its hash>", param="key")
        key = actor.key_hash  # a key reads itself
    token = token_of(key)
    async with parts.db.session() as session:
        row = await _owned_key(session, actor, token)
        return {"key": token, "info": key_view(row)}


async def update(parts: AdminParts, request: HTTPConnection, actor: Actor, body: KeyUpdate) -> JSONObject:
    _check_input(parts, body)
    token = token_of(body.key)
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        key = await _owned_key(session, actor, token)
        before = key_view(key)
        fields = _key_fields(body)
        user_id = body.user_id if "user_id" in fields else key.user_id
        team_id = body.team_id if "team_id" in fields else key.team_id
        _check_assignable(actor, user_id, key.user_id)
        if "blocked" in fields and not actor.sees_everything:
            raise actor.refuse("'blocked' (only a proxy admin blocks and unblocks keys)")
        actor.require(actor.owns_key(None, user_id, team_id), f"a key of user '{user_id}' and team '{team_id}'")
        await _check_owner(session, body)
        await store.check_alias_free(session, body.key_alias, token)
        store.apply_fields(key, fields)
        if body.duration:
            key.expires = add_duration(datetime.now(UTC), body.duration)
        elif "duration" in body.model_fields_set:  # duration: null -> the key never expires
            key.expires = None
        await session.flush()
        await session.refresh(key)
        view = key_view(key)
        await unit.audit("key.update", token, before=before, after=view)
        unit.invalidate(token)
    return {"key": token, **view}


async def set_blocked(
    parts: AdminParts, request: HTTPConnection, actor: Actor, raw: str, blocked: bool
) -> JSONObject:
    token = token_of(raw)
    async with unit_of_work(parts, request, actor) as unit:
        key = await _owned_key(unit.session, actor, token)
        before = key_view(key)
        key.blocked = blocked
        await unit.session.flush()
        await unit.session.refresh(key)
        view = key_view(key)
        await unit.audit("key.block" if blocked else "key.unblock", token, before=before, after=view)
        unit.invalidate(token)
    return view


async def delete(parts: AdminParts, request: HTTPConnection, actor: Actor, body: KeyDelete) -> JSONObject:
    if not body.keys and not body.key_aliases:
        raise invalid_request("pass 'keys' (keys or their hashes) or 'key_aliases'", param="keys")
    deleted: list[str] = []
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        rows = [await _owned_key(session, actor, token_of(k)) for k in body.keys or ()]
        for alias in body.key_aliases or ():
            row = await store.key_by_alias(session, alias)
            if row is None:
                raise ProxyError(ErrorKind.NOT_FOUND, f"no key has alias '{alias}'", param="key_aliases")
            actor.require(actor.owns_key(row.token, row.user_id, row.team_id), f"the key with alias '{alias}'")
            rows.append(row)
        for row in rows:
            if row.token in deleted:
                continue
            await unit.audit("key.delete", row.token, before=key_view(row))
            row.deleted_at = datetime.now(UTC)
            row.key_alias = None  # frees the alias for a new key
            deleted.append(row.token)
            unit.invalidate(row.token)
    return {"deleted_keys": deleted}


async def regenerate(parts: AdminParts, request: HTTPConnection, actor: Actor, target: str) -> JSONObject:
    old = token_of(target)
    raw = generate_key()
    async with unit_of_work(parts, request, actor) as unit:
        session = unit.session
        row = await _owned_key(session, actor, old)
        if not actor.sees_everything and row.user_id not in (None, actor.user_id):
            # a new raw key of another user (perhaps an admin) is not a team admin's to take
            raise actor.refuse(f"a key of user '{row.user_id}' (it regenerates keys of its own user)")
        before = key_view(row)
        fields = {c.key: getattr(row, c.key) for c in Key.__mapper__.column_attrs}
        await session.delete(row)
        await session.flush()
        fields.update(token=hash_key(raw), key_name=mask_key(raw), created_at=None, updated_at=None)
        new = Key(**{k: v for k, v in fields.items() if v is not None or k in ("max_budget", "expires")})
        session.add(new)
        await session.flush()
        await session.refresh(new)
        view = key_view(new)
        await unit.audit("key.regenerate", old, before=before, after=view)
        unit.invalidate(old)
    return {"key": raw, **view}
