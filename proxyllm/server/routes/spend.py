"""``/spend/logs``, ``/global/spend``, ``/global/spend/report`` and ``/global/spend/teams``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from proxyllm.accounts.keys import token_of
from proxyllm.accounts.views import money, spend_view
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables import SpendLog, Team
from proxyllm.server.deps import Admin, Caller, RuntimeDep

router = APIRouter(tags=["spend"])
GROUPS = {
    "team": SpendLog.team_id,
    "key": SpendLog.api_key,
    "api_key": SpendLog.api_key,  # LiteLLM's name
    "model": SpendLog.model_group,
    "user": SpendLog.user_id,
    "customer": SpendLog.end_user,  # LiteLLM's name for end users
}


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
) -> list[JSONObject]:
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
async def global_spend(runtime: RuntimeDep, _: Admin) -> JSONObject:
    async with runtime.db.session() as session:
        charged = func.sum(func.coalesce(SpendLog.price, SpendLog.spend))
        total, price = (
            await session.execute(select(func.coalesce(func.sum(SpendLog.spend), 0), func.coalesce(charged, 0)))
        ).one()
    return {"spend": money(Decimal(total)), "spend_price": money(Decimal(price)), "max_budget": None}


def _dollars(value: Decimal | int | float | str | None) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value or 0)


@router.get("/global/spend/report")
async def spend_report(
    runtime: RuntimeDep,
    _: Admin,
    start_date: str | None = None,
    end_date: str | None = None,
    group_by: str = Query(default="team", pattern="^(team|key|api_key|model|user|customer)$"),
) -> list[JSONObject]:
    """Spend per day and per ``group_by``, each group with its ``metadata``: the spend of each (model,
    api key) in it, as LiteLLM's report has it. Team groups carry ``team_name`` (the alias, else
    "Unassigned Team"; ``team`` keeps the id)."""
    column = GROUPS[group_by]
    day = func.date(SpendLog.start_time)
    query = (
        select(
            day.label("day"),
            column.label("group"),
            SpendLog.model_group.label("model"),
            SpendLog.api_key.label("api_key"),
            func.sum(SpendLog.spend).label("spend"),
            func.sum(func.coalesce(SpendLog.price, SpendLog.spend)).label("revenue"),
            func.sum(SpendLog.total_tokens).label("tokens"),
            func.count().label("requests"),
        )
        .group_by(day, column, SpendLog.model_group, SpendLog.api_key)
        .order_by(day)
    )
    start, end = _moment(start_date, "start_date"), _moment(end_date, "end_date", end=True)
    if start:
        query = query.where(SpendLog.start_time >= start)
    if end:
        query = query.where(SpendLog.start_time < end)
    days: dict[str, dict[tuple[object, ...], JSONObject]] = {}
    async with runtime.db.session() as session:
        rows = (await session.execute(query)).mappings().all()
        names = await _team_names(session, {r["group"] for r in rows}) if group_by == "team" else {}
    for row in rows:
        groups = days.setdefault(str(row["day"]), {})
        entry = groups.get((row["group"],))
        if entry is None:
            entry = groups[(row["group"],)] = {group_by: row["group"], **_totals(), "metadata": []}
            if group_by == "team":
                entry["team_name"] = names.get(row["group"]) or "Unassigned Team"
        spend, revenue = _dollars(row["spend"]), _dollars(row["revenue"])
        entry["_spend"] += spend
        entry["_revenue"] += revenue
        entry["total_tokens"] += int(row["tokens"] or 0)
        entry["requests"] += row["requests"]
        entry["metadata"].append(
            {
                "model": row["model"],
                "api_key": row["api_key"],
                "spend": money(spend),
                "total_tokens": int(row["tokens"] or 0),
            }
        )
    report = []
    for label, groups in days.items():
        cost = sum((g["_spend"] for g in groups.values()), Decimal(0))
        revenue = sum((g["_revenue"] for g in groups.values()), Decimal(0))
        report.append(
            {
                "group_by_day": label,
                "total_spend": money(cost),
                "total_cost": money(cost),
                "total_revenue": money(revenue),
                "total_margin": money(revenue - cost),
                f"{group_by}s": [_finish(g) for g in groups.values()],
            }
        )
    return report


def _totals() -> JSONObject:
    return {"_spend": Decimal(0), "_revenue": Decimal(0), "total_tokens": 0, "requests": 0}


def _finish(group: JSONObject) -> JSONObject:
    spend, revenue = group.pop("_spend"), group.pop("_revenue")
    group["total_spend"] = money(spend)  # LiteLLM's field: the operator's cost
    group["total_cost"] = money(spend)
    group["total_revenue"] = money(revenue)  # what customers were charged
    group["margin"] = money(revenue - spend)
    return group


async def _team_names(session: AsyncSession, team_ids: set[object]) -> dict[str, str]:
    ids = [t for t in team_ids if isinstance(t, str)]
    if not ids:
        return {}
    rows = await session.execute(select(Team.team_id, Team.team_alias).where(Team.team_id.in_(ids)))
    return {team_id: alias or team_id for team_id, alias in rows.all()}


@router.get("/global/spend/teams")
async def spend_per_team(runtime: RuntimeDep, _: Admin) -> JSONObject:
    """The last 30 days' spend per team and day, in LiteLLM's shape (teams named by their alias)."""
    since = datetime.combine(datetime.now(UTC).date() - timedelta(days=30), time.min, UTC)
    day = func.date(SpendLog.start_time)
    query = (
        select(day.label("day"), SpendLog.team_id, func.sum(SpendLog.spend).label("spend"))
        .where(SpendLog.start_time >= since)
        .group_by(day, SpendLog.team_id)
        .order_by(day)
    )
    async with runtime.db.session() as session:
        rows = (await session.execute(query)).all()
        names = await _team_names(session, {r[1] for r in rows})
    by_day: dict[str, dict[str, Decimal]] = {}
    totals: dict[str, Decimal] = {}
    for label, team_id, spend in rows:
        name = names.get(team_id) or team_id or "Unassigned"
        amount = _dollars(spend)
        per_day = by_day.setdefault(str(label), {})
        per_day[name] = per_day.get(name, Decimal(0)) + amount
        totals[name] = totals.get(name, Decimal(0)) + amount
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    return {
        "daily_spend": [
            {"date": label, **{name: money(amount) for name, amount in teams.items()}}
            for label, teams in by_day.items()
        ],
        "teams": sorted(totals),
        "total_spend_per_team": [{"team_id": name, "total_spend": money(amount)} for name, amount in ranked[:10]],
    }
