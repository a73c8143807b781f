"""``/spend/logs``, ``/global/spend`` and ``/global/spend/report``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from proxyllm.accounts.keys import token_of
from proxyllm.accounts.views import money, spend_view
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.db.tables import SpendLog
from proxyllm.server.deps import Admin, Caller, RuntimeDep

router = APIRouter(tags=["spend"])
GROUPS = {"team": SpendLog.team_id, "key": SpendLog.api_key, "model": SpendLog.model_group, "user": SpendLog.user_id}


def _moment(value: str | None, param: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (a whole day; an end date includes that day) or an ISO timestamp."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1) if end else day, time.min, UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_request(f"'{param}' must be a date (YYYY-MM-DD) or an ISO timestamp", param=param) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/spend/logs")
async def spend_logs(
    runtime: RuntimeDep,
    caller: Caller,
    api_key: str | None = None,
    user_id: str | None = None,
    team_id: str | None = None,
    request_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int = Query(default=100, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    if not caller.is_admin:
        if (api_key and token_of(api_key) != caller.key_hash) or user_id or team_id:
            raise ProxyError(ErrorKind.PERMISSION, "a virtual key may only read its own spend")
        api_key = caller.key_hash
    query = select(SpendLog)
    if api_key:
        query = query.where(SpendLog.api_key == token_of(api_key))
    if user_id:
        query = query.where(SpendLog.user_id == user_id)
    if team_id:
        query = query.where(SpendLog.team_id == team_id)
    if request_id:
        query = query.where(SpendLog.request_id == request_id)
    start, end = _moment(start_date, "start_date"), _moment(end_date, "end_date", end=True)
    if start:
        query = query.where(SpendLog.start_time >= start)
    if end:
        query = query.where(SpendLog.start_time < end)
    async with runtime.db.session() as session:
        rows = await session.execute(query.order_by(SpendLog.start_time.desc()).limit(limit))
        return [spend_view(r) for r in rows.scalars()]


@router.get("/global/spend")
async def global_spend(runtime: RuntimeDep, _: Admin) -> dict[str, Any]:
    async with runtime.db.session() as session:
        charged = func.sum(func.coalesce(SpendLog.price, SpendLog.spend))
        total, price = (
            await session.execute(select(func.coalesce(func.sum(SpendLog.spend), 0), func.coalesce(charged, 0)))
        ).one()
    return {"spend": money(Decimal(total)), "spend_price": money(Decimal(price)), "max_budget": None}


def _dollars(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value or 0)


@router.get("/global/spend/report")
async def spend_report(
    runtime: RuntimeDep,
    _: Admin,
    start_date: str | None = None,
    end_date: str | None = None,
    group_by: str = Query(default="team", pattern="^(team|key|model|user)$"),
) -> list[dict[str, Any]]:
    column = GROUPS[group_by]
    day = func.date(SpendLog.start_time)
    query = (
        select(
            day.label("day"),
            column.label("group"),
            func.sum(SpendLog.spend).label("spend"),
            func.sum(func.coalesce(SpendLog.price, SpendLog.spend)).label("revenue"),
            func.sum(SpendLog.total_tokens).label("tokens"),
            func.count().label("requests"),
        )
        .group_by(day, column)
        .order_by(day)
    )
    start, end = _moment(start_date, "start_date"), _moment(end_date, "end_date", end=True)
    if start:
        query = query.where(SpendLog.start_time >= start)
    if end:
        query = query.where(SpendLog.start_time < end)
    days: dict[str, dict[str, Any]] = {}
    async with runtime.db.session() as session:
        for row in (await session.execute(query)).mappings():
            label = str(row["day"])
            entry = days.setdefault(
                label,
                {"group_by_day": label, "total_spend": Decimal(0), "total_revenue": Decimal(0), f"{group_by}s": []},
            )
            spend, revenue = _dollars(row["spend"]), _dollars(row["revenue"])
            entry["total_spend"] += spend
            entry["total_revenue"] += revenue
            entry[f"{group_by}s"].append(
                {
                    group_by: row["group"],
                    "total_spend": money(spend),  # LiteLLM's field: the operator's cost
                    "total_cost": money(spend),
                    "total_revenue": money(revenue),  # what customers were charged
                    "margin": money(revenue - spend),
                    "total_tokens": int(row["tokens"] or 0),
                    "requests": row["requests"],
                }
            )
    for entry in days.values():
        cost, revenue = entry["total_spend"], entry["total_revenue"]
        entry["total_spend"], entry["total_cost"] = money(cost), money(cost)
        entry["total_revenue"], entry["total_margin"] = money(revenue), money(revenue - cost)
    return list(days.values())
