"""``GET /audit/logs``: every admin action, newest first, with filters. Admin only."""

from __future__ import annotations

from fastapi import APIRouter, Query

from proxyllm.core.bounds import MAX_PAGE
from proxyllm.core.jsontypes import JSONObject
from proxyllm.ops import audit
from proxyllm.server.deps import Admin, RuntimeDep
from proxyllm.server.routes.spend import _moment

router = APIRouter(tags=["audit"])


@router.get("/audit/logs")
async def audit_logs(
    runtime: RuntimeDep,
    _: Admin,
    action: str | None = Query(default=None, description="exact, or a prefix ending in '.' or '*' (key.*)"),
    target_type: str | None = None,
    target_id: str | None = None,
    actor: str | None = None,
    client_ip: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    page: int = Query(default=1, ge=1, le=MAX_PAGE),
    page_size: int = Query(default=100, ge=1, le=1000),
) -> JSONObject:
    since = _moment(start_date, "start_date")
    until = _moment(end_date, "end_date", end=True)
    async with runtime.db.session() as session:
        rows, total = await audit.search(
            session,
            action=action,
            target_type=target_type,
            target_id=target_id,
            actor=actor,
            client_ip=client_ip,
            since=since,
            until=until,
            page=page,
            page_size=page_size,
        )
        logs = [audit.view(row) for row in rows]
    return {"data": logs, "total": total, "page": page, "page_size": page_size, "total_pages": -(-total // page_size)}
