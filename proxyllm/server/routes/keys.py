"""``/key/*``: generate, inspect, update, block, regenerate and delete virtual keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from proxyllm.accounts import store
from proxyllm.accounts.durations import add_duration
from proxyllm.accounts.keys import check_custom_key, generate_key, hash_key, mask_key, token_of
from proxyllm.accounts.records import ALL_MODELS
from proxyllm.accounts.schemas import KeyDelete, KeyGenerate, KeyRef, KeyUpdate, set_fields
from proxyllm.accounts.views import key_view
from proxyllm.core.bounds import MAX_PAGE
from proxyllm.core.clients import check_key_metadata
from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.db.tables import Key, Team
from proxyllm.ops import audit
from proxyllm.server.deps import Admin, Caller, RuntimeDep
from proxyllm.server.runtime import Runtime

router = APIRouter(tags=["keys"])


async def _check_owner(session: Any, body: KeyGenerate | KeyUpdate) -> None:
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


@router.post("/key/generate")
async def generate(body: KeyGenerate, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    runtime.check_models(body.models)
    check_key_metadata(body.metadata)
    raw = check_custom_key(body.key) if body.key else generate_key()
    token = hash_key(raw)
    async with runtime.db.session() as session:
        await _check_owner(session, body)
        await store.check_alias_free(session, body.key_alias)
        if await session.get(Key, token) is not None:
            raise invalid_request("this key already exists", param="key")
        key = Key(token=token, key_name=mask_key(raw), models=[], tags=[], metadata_={})
        store.apply_fields(key, set_fields(body, "key", "duration"))
        if body.duration:
            key.expires = add_duration(datetime.now(UTC), body.duration)
        session.add(key)
        await session.flush()
        await session.refresh(key)
        view = key_view(key)
        await audit.record(session, request, caller, action="key.generate", target=token, after=view)
    runtime.keys.invalidate(token)
    return {"key": raw, **view}


@router.get("/key/info")
async def info(runtime: RuntimeDep, caller: Caller, key: str | None = Query(default=None)) -> dict[str, Any]:
    if not caller.is_admin:
        if key is not None and token_of(key) != caller.key_hash:
            raise ProxyError(ErrorKind.PERMISSION, "a virtual key may only read its own /key/info")
        key = caller.key_hash
    if key is None:
        raise invalid_request("pass ?key=<key or its hash>", param="key")
    token = token_of(key)
    async with runtime.db.session() as session:
        row = await store.get_key(session, token)
        return {"key": token, "info": key_view(row)}


@router.post("/key/update")
async def update(body: KeyUpdate, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    runtime.check_models(body.models)
    check_key_metadata(body.metadata)
    token = token_of(body.key)
    async with runtime.db.session() as session:
        key = await store.get_key(session, token)
        before = key_view(key)
        await _check_owner(session, body)
        await store.check_alias_free(session, body.key_alias, token)
        store.apply_fields(key, set_fields(body, "key", "duration"))
        if body.duration:
            key.expires = add_duration(datetime.now(UTC), body.duration)
        await session.flush()
        await session.refresh(key)
        view = key_view(key)
        await audit.record(session, request, caller, action="key.update", target=token, before=before, after=view)
    runtime.keys.invalidate(token)
    return view


async def _set_blocked(
    runtime: Runtime, raw: str, blocked: bool, request: Request, caller: Principal
) -> dict[str, Any]:
    token = token_of(raw)
    async with runtime.db.session() as session:
        key = await store.get_key(session, token)
        before = key_view(key)
        key.blocked = blocked
        await session.flush()
        await session.refresh(key)
        view = key_view(key)
        action = "key.block" if blocked else "key.unblock"
        await audit.record(session, request, caller, action=action, target=token, before=before, after=view)
    runtime.keys.invalidate(token)
    return view


@router.post("/key/block")
async def block(body: KeyRef, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    return await _set_blocked(runtime, body.key, True, request, caller)


@router.post("/key/unblock")
async def unblock(body: KeyRef, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    return await _set_blocked(runtime, body.key, False, request, caller)


@router.post("/key/delete")
async def delete(body: KeyDelete, request: Request, runtime: RuntimeDep, caller: Admin) -> dict[str, Any]:
    if not body.keys and not body.key_aliases:
        raise invalid_request("pass 'keys' (keys or their hashes) or 'key_aliases'", param="keys")
    deleted: list[str] = []
    async with runtime.db.session() as session:
        rows = [await store.get_key(session, token_of(k)) for k in body.keys or ()]
        for alias in body.key_aliases or ():
            row = await store.key_by_alias(session, alias)
            if row is None:
                raise ProxyError(ErrorKind.NOT_FOUND, f"no key has alias '{alias}'", param="key_aliases")
            rows.append(row)
        for row in rows:
            await audit.record(session, request, caller, action="key.delete", target=row.token, before=key_view(row))
            row.deleted_at = datetime.now(UTC)
            row.key_alias = None  # frees the alias for a new key
            deleted.append(row.token)
    for token in deleted:
        runtime.keys.invalidate(token)
    return {"deleted_keys": deleted}


@router.post("/key/regenerate")
@router.post("/key/{key}/regenerate")
async def regenerate(
    request: Request, runtime: RuntimeDep, caller: Admin, key: str | None = None, body: KeyRef | None = None
) -> dict[str, Any]:
    target = key or (body.key if body else None)
    if not target:
        raise invalid_request("pass the key to regenerate", param="key")
    old = token_of(target)
    raw = generate_key()
    async with runtime.db.session() as session:
        row = await store.get_key(session, old)
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
        await audit.record(session, request, caller, action="key.regenerate", target=old, before=before, after=view)
    runtime.keys.invalidate(old)
    return {"key": raw, **view}


@router.get("/key/list")
async def list_keys(
    runtime: RuntimeDep,
    _: Admin,
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    size: int = Query(default=50, ge=1, le=500),
    user_id: str | None = None,
    team_id: str | None = None,
    key_alias: str | None = None,
    return_full_object: bool = False,
) -> dict[str, Any]:
    async with runtime.db.session() as session:
        rows, total = await store.list_keys(
            session, page=page, size=size, user_id=user_id, team_id=team_id, alias=key_alias
        )
        keys: list[Any] = [key_view(r) if return_full_object else r.token for r in rows]
    return {"keys": keys, "total_count": total, "current_page": page, "total_pages": -(-total // size)}
