"""Admin services for shared budgets: one call, one transaction.

Each mutation validates, changes the rows and writes its audit row in one database transaction (or not
at all), then drops what the process cached about the end users pointing at the budget. Routes
(``server/routes/budgets.py``) only parse, call and respond. End users (``end_users.py``) use the same
``Admin`` parts and the budget view and field setter here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from starlette.requests import HTTPConnection

from proxyllm.accounts.budget_schemas import BUDGET_FIELDS, BudgetNew, BudgetUpdate
from proxyllm.accounts.durations import next_reset
from proxyllm.accounts.end_users import EndUsers
from proxyllm.accounts.views import money, when
from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.database import Database
from proxyllm.db.tables_budgets import Budget, EndUser
from proxyllm.ops import audit

if TYPE_CHECKING:
    from proxyllm.billing.service import Billing

# What /budget/settings describes (LiteLLM's list: field, type, description).
SETTINGS = (
    ("max_parallel_requests", "Integer", "Max concurrent requests allowed for this budget id."),
    ("tpm_limit", "Integer", "Max tokens per minute allowed for this budget id."),
    ("rpm_limit", "Integer", "Max requests per minute allowed for this budget id."),
    ("budget_duration", "String", "Max duration budget should be set for (e.g. '1hr', '1d', '28d')"),
    ("max_budget", "Float", "Requests will fail if this budget (in USD) is exceeded."),
    ("soft_budget", "Float", "Requests will NOT fail if this is exceeded. Will fire alerting though."),
    ("model_max_budget", "Object", "Max budget per model, e.g. {'gpt-4o': {'max_budget': 10}}."),
)


@dataclass(slots=True)
class Admin:
    """What a service call needs: the database, the end-user cache, billing, the served models."""

    db: Database
    end_users: EndUsers
    billing: Billing | None
    serves: Callable[[str], bool]  # is this model name served?


def now() -> datetime:
    return datetime.now(UTC)


def budget_view(row: Budget) -> JSONObject:
    return {
        "budget_id": row.budget_id,
        "max_budget": money(row.max_budget),
        "soft_budget": money(row.soft_budget),
        "max_parallel_requests": row.max_parallel_requests,
        "tpm_limit": row.tpm_limit,
        "rpm_limit": row.rpm_limit,
        "model_max_budget": dict(row.model_max_budget or {}),
        "budget_duration": row.budget_duration,
        "budget_reset_at": when(row.budget_reset_at),
        "created_at": when(row.created_at),
        "created_by": row.created_by,
        "updated_at": when(row.updated_at),
        "updated_by": row.updated_by,
    }


def audit_budget(row: Budget) -> JSONObject:
    """The budget's fields for its audit row (not its timestamps, which the database sets)."""
    return {name: getattr(row, name) for name in ("budget_id", *BUDGET_FIELDS)}


def _not_found_budget(budget_id: str, param: str = "budget_id") -> ProxyError:
    return ProxyError(ErrorKind.NOT_FOUND, f"budget '{budget_id}' does not exist", param=param)


def apply_budget(row: Budget, values: Mapping[str, object], actor: str) -> None:
    """Set budget fields; a new duration without a reset time starts its first period now."""
    for name, value in values.items():
        setattr(row, name, value if name != "model_max_budget" else (value or {}))
    if "budget_duration" in values and "budget_reset_at" not in values:
        duration = values["budget_duration"]
        row.budget_reset_at = next_reset(now(), str(duration)) if duration else None
    row.updated_by = actor


# -- budgets ------------------------------------------------------------------------------------


async def new_budget(admin: Admin, body: BudgetNew, *, caller: Principal, request: HTTPConnection) -> JSONObject:
    actor = audit.actor_of(caller)[0]
    budget_id = body.budget_id or str(uuid.uuid4())
    try:
        async with admin.db.session() as session:
            row = Budget(budget_id=budget_id, created_by=actor, model_max_budget={})
            apply_budget(row, body.budget_values(), actor)
            session.add(row)
            await session.flush()
            await audit.record(session, request, caller, action="budget.new", target=budget_id, after=audit_budget(row))
            await session.refresh(row)
            return budget_view(row)
    except IntegrityError:
        raise invalid_request(f"Budget with id '{budget_id}' already exists.", param="budget_id") from None


async def update_budget(
    admin: Admin, body: BudgetUpdate, *, caller: Principal, request: HTTPConnection
) -> JSONObject:
    actor = audit.actor_of(caller)[0]
    async with admin.db.session() as session:
        row = await session.get(Budget, body.budget_id, with_for_update=not admin.db.sqlite)
        if row is None:
            raise _not_found_budget(body.budget_id)
        before = audit_budget(row)
        apply_budget(row, body.budget_values(), actor)
        await session.flush()
        await audit.record(
            session,
            request,
            caller,
            action="budget.update",
            target=row.budget_id,
            before=before,
            after=audit_budget(row),
        )
        await session.refresh(row)
        view = budget_view(row)
    admin.end_users.invalidate()  # every end user pointing at it
    return view


async def budgets_info(admin: Admin, budget_ids: list[str]) -> list[JSONObject]:
    if not budget_ids:
        raise invalid_request(f"Specify list of budget id's to query. Passed in={budget_ids}", param="budgets")
    async with admin.db.session() as session:
        rows = (await session.execute(select(Budget).where(Budget.budget_id.in_(budget_ids)))).scalars()
        return [budget_view(r) for r in rows]


async def list_budgets(admin: Admin) -> list[JSONObject]:
    async with admin.db.session() as session:
        rows = (await session.execute(select(Budget).order_by(Budget.created_at, Budget.budget_id))).scalars()
        return [budget_view(r) for r in rows]


async def budget_settings(admin: Admin, budget_id: str) -> list[JSONObject]:
    async with admin.db.session() as session:
        row = await session.get(Budget, budget_id)
    values = budget_view(row) if row is not None else {}
    return [
        {
            "field_name": name,
            "field_type": kind,
            "field_description": description,
            "field_value": values.get(name),
            "stored_in_db": True,
            "field_default_value": None,
        }
        for name, kind, description in SETTINGS
    ]


async def delete_budget(admin: Admin, budget_id: str, *, caller: Principal, request: HTTPConnection) -> JSONObject:
    """Delete a budget; the end users that pointed at it keep no budget (LiteLLM's ON DELETE SET NULL)."""
    async with admin.db.session() as session:
        row = await session.get(Budget, budget_id)
        if row is None:
            raise _not_found_budget(budget_id, "id")
        view = budget_view(row)
        await session.execute(update(EndUser).where(EndUser.budget_id == budget_id).values(budget_id=None))
        await session.delete(row)
        await audit.record(session, request, caller, action="budget.delete", target=budget_id, before=audit_budget(row))
    admin.end_users.invalidate()
    return view
