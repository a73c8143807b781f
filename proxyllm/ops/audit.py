"""The audit log: who did what to which object, when, from where, with the fields it changed.

``record`` adds the row to the caller's session, so it commits (or rolls back) with the change it
describes: a change that fails leaves no audit row, and no change goes unrecorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.types import Scope

from proxyllm.accounts.store import aware
from proxyllm.core.clients import client_address
from proxyllm.core.context import Principal
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.masking import masked
from proxyllm.db.tables_ops import AuditLog

KEEP = frozenset({"token"})  # a key's token is its SHA-256: it names the key, it does not unlock it
BOOKKEEPING = frozenset({"updated_at"})  # changes with every write; not what an update changed


def actor_of(actor: Principal | str | None) -> tuple[str, str | None]:
    """(who, key hash): "master", "open" (no master key set), a key's alias or ``key:<hash prefix>``."""
    if actor is None:
        return "system", None
    if isinstance(actor, str):
        return actor, None
    if actor.kind == "key":
        who = actor.key_alias or f"key:{(actor.key_hash or '')[:12]}"
        return who, actor.key_hash
    return actor.kind, None


def jsonable(value: object) -> JSONValue:
    """Values as JSON keeps them: money as exact decimal strings, times in ISO 8601."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def changes(
    before: Mapping[str, object] | None, after: Mapping[str, object] | None
) -> tuple[JSONObject | None, JSONObject | None]:
    """For an update, only the fields whose value changed (not ``updated_at``); a creation or deletion
    keeps every field."""
    old = jsonable(before) if before is not None else None
    new = jsonable(after) if after is not None else None
    if old is None or new is None:
        return old, new
    changed = [k for k in {**old, **new} if old.get(k) != new.get(k) and k not in BOOKKEEPING]
    return {k: old.get(k) for k in changed}, {k: new.get(k) for k in changed}


async def record(
    session: AsyncSession,
    request: HTTPConnection | Scope | None,
    actor: Principal | str | None,
    *,
    action: str,
    target: str | None = None,
    before: Mapping[str, object] | None = None,
    after: Mapping[str, object] | None = None,
) -> AuditLog:
    """Add an audit row to ``session`` (inside the transaction that makes the change).

    ``request`` (a Starlette request, or an ASGI scope) gives the client address; ``actor`` is the
    caller (``Principal``) or a name for non-key actors (e.g. "stripe-webhook"); ``action`` is
    ``"<object>.<verb>"`` (key.update, model.delete, billing.adjust...); ``target`` the object's id;
    ``before``/``after`` plain dicts of the object's fields (Decimal and datetime are fine). Secrets
    in them are masked; for an update only the changed fields are kept.
    """
    who, key_hash = actor_of(actor)
    scope = request.scope if isinstance(request, HTTPConnection) else request
    old, new = changes(before, after)
    row = AuditLog(
        actor=who[:255],
        actor_key_hash=key_hash,
        action=action,
        target_type=action.partition(".")[0],
        target_id=None if target is None else str(target)[:255],
        before=masked(old, keep=KEEP) if old is not None else None,
        after=masked(new, keep=KEEP) if new is not None else None,
        client_ip=client_address(scope),
    )
    session.add(row)
    return row


def view(row: AuditLog) -> JSONObject:
    created = aware(row.created_at)
    return {
        "id": row.id,
        "created_at": created.isoformat() if created else None,
        "actor": row.actor,
        "actor_key_hash": row.actor_key_hash,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "before": row.before,
        "after": row.after,
        "client_ip": row.client_ip,
    }


async def search(
    session: AsyncSession,
    *,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    actor: str | None = None,
    client_ip: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: int = 1,
    page_size: int = 100,
) -> tuple[Sequence[AuditLog], int]:
    """Newest first. ``action`` ending in ``.`` or ``*`` matches a prefix (``key.`` = every key action)."""
    where: list[ColumnElement[bool]] = []
    if action:
        if action.endswith(("*", ".")):
            where.append(AuditLog.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            where.append(AuditLog.action == action)
    if target_type:
        where.append(AuditLog.target_type == target_type)
    if target_id:
        where.append(AuditLog.target_id == target_id)
    if actor:
        where.append(AuditLog.actor == actor)
    if client_ip:
        where.append(AuditLog.client_ip == client_ip)
    if since:
        where.append(AuditLog.created_at >= since)
    if until:
        where.append(AuditLog.created_at < until)
    total = (await session.execute(select(func.count()).select_from(AuditLog).where(*where))).scalar_one()
    rows = await session.execute(
        select(AuditLog).where(*where).order_by(AuditLog.id.desc()).offset((page - 1) * page_size).limit(page_size)
    )
    return rows.scalars().all(), total
