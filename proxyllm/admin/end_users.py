"""Admin services for end users: one call, one transaction.

Each mutation validates, changes the rows, links billing and writes its audit row in one database
transaction (or not at all), then drops what the process cached about the rows it changed. Routes
(``server/routes/customers.py``) only parse, call and respond. Shared budgets are ``budgets.py``.

Where LiteLLM's behaviour is a bug, proxyllm's differs (docs/litellm-compatibility.md):

- ``/end_user/update`` with budget fields on an end user whose budget other end users share gets a
  budget of its own (LiteLLM edits the shared budget, changing every end user that points at it);
- ``/end_user/update`` can set ``blocked`` to false (LiteLLM drops false, 0, [] and {} as "unset").
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from proxyllm.accounts.budget_schemas import BUDGET_FIELDS, EndUserFields, EndUserNew, EndUserUpdate
from proxyllm.accounts.end_users import KIND
from proxyllm.accounts.views import money, when
from proxyllm.admin.budgets import Admin, apply_budget, budget_view
from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.tables_budgets import Budget, EndUser
from proxyllm.ops import audit

__all__ = [
    "Admin",
    "delete_end_users",
    "end_user_info",
    "end_user_view",
    "list_end_users",
    "new_end_user",
    "set_blocked",
    "update_end_user",
]


def _not_found_end_users(ids: list[str], param: str) -> ProxyError:
    return ProxyError(ErrorKind.NOT_FOUND, f"End User Id(s)={', '.join(ids)} do not exist in db", param=param)


def end_user_view(admin: Admin, row: EndUser, budget: Budget | None, customer: str | None = None) -> JSONObject:
    spend = row.spend + admin.end_users.unflushed((KIND, row.user_id))
    return {
        "user_id": row.user_id,
        "blocked": bool(row.blocked),
        "alias": row.alias,
        "spend": money(spend) or 0.0,
        "allowed_model_region": row.allowed_model_region,
        "default_model": row.default_model,
        "budget_id": row.budget_id,
        "litellm_budget_table": budget_view(budget) if budget is not None else None,
        "object_permission_id": None,
        "object_permission": None,
        "metadata": dict(row.metadata_ or {}),
        "stripe_customer_id": customer,
        "created_at": when(row.created_at),
        "updated_at": when(row.updated_at),
    }


def _audit_end_user(row: EndUser) -> JSONObject:
    return {
        "user_id": row.user_id,
        "alias": row.alias,
        "blocked": bool(row.blocked),
        "budget_id": row.budget_id,
        "allowed_model_region": row.allowed_model_region,
        "default_model": row.default_model,
        "spend": row.spend,
        "metadata": dict(row.metadata_ or {}),
    }


async def _customer(admin: Admin, session: AsyncSession, user_id: str) -> str | None:
    if admin.billing is None:
        return None
    from proxyllm.db.tables_billing import BillingAccount

    account = await session.get(BillingAccount, (KIND, user_id))
    return account.stripe_customer_id if account is not None else None


async def _check_stripe(admin: Admin, body: EndUserFields) -> None:
    """A Stripe customer to link is checked with Stripe before the transaction starts."""
    customer = body.stripe_customer_id
    if customer is None:
        return
    if admin.billing is None:
        raise invalid_request(
            "Stripe billing is not enabled, so 'stripe_customer_id' cannot be linked", param="stripe_customer_id"
        )
    if not await admin.billing.api.retrieve_customer(customer):
        raise invalid_request(f"Stripe has no customer '{customer}'", param="stripe_customer_id")


async def _link_stripe(admin: Admin, session: AsyncSession, user_id: str, customer: str | None) -> None:
    if customer is not None and admin.billing is not None:
        account = await admin.billing.ledger.get(session, (KIND, user_id))
        account.stripe_customer_id = customer


def _check_fields(admin: Admin, body: EndUserFields) -> dict[str, object]:
    budget = body.budget_values()
    if budget and "budget_id" in body.given() and body.budget_id is not None:
        raise invalid_request(
            "give either 'budget_id' (a shared budget) or budget fields (max_budget, ...), not both", param="budget_id"
        )
    if body.default_model is not None and not admin.serves(body.default_model):
        raise invalid_request(
            f"Default Model not on proxy: '{body.default_model}'; GET /v1/models lists the models",
            param="default_model",
        )
    return budget


async def _linked_budget(session: AsyncSession, budget_id: str) -> Budget:
    budget = await session.get(Budget, budget_id)
    if budget is None:
        raise invalid_request(f"budget '{budget_id}' does not exist; create it with /budget/new", param="budget_id")
    return budget


def _apply_end_user(row: EndUser, body: EndUserFields) -> None:
    given = body.given()
    for name in ("alias", "allowed_model_region", "default_model"):
        if name in given:
            setattr(row, name, getattr(body, name))
    if "blocked" in given:
        row.blocked = bool(body.blocked)
    if "metadata" in given:
        row.metadata_ = dict(body.metadata or {})
    if "spend" in given and body.spend is not None:
        row.spend = body.spend


async def new_end_user(admin: Admin, body: EndUserNew, *, caller: Principal, request: HTTPConnection) -> JSONObject:
    budget_values = _check_fields(admin, body)
    await _check_stripe(admin, body)
    actor = audit.actor_of(caller)[0]
    try:
        async with admin.db.session() as session:
            if await session.get(EndUser, body.user_id) is not None:
                raise invalid_request(
                    f"Customer already exists, passed user_id={body.user_id}. Please pass a new user_id.",
                    param="user_id",
                )
            budget: Budget | None = None
            if budget_values:  # LiteLLM makes a budget object of the end user's own limits
                budget = Budget(budget_id=str(uuid.uuid4()), created_by=actor, model_max_budget={})
                apply_budget(budget, budget_values, actor)
                session.add(budget)
                await session.flush()
            elif body.budget_id is not None:
                budget = await _linked_budget(session, body.budget_id)
            row = EndUser(user_id=body.user_id, metadata_={}, spend=Decimal(0), blocked=False)
            row.budget_id = budget.budget_id if budget is not None else None
            _apply_end_user(row, body)
            session.add(row)
            await session.flush()
            await _link_stripe(admin, session, body.user_id, body.stripe_customer_id)
            await audit.record(
                session, request, caller, action="end_user.new", target=body.user_id, after=_audit_end_user(row)
            )
            await session.refresh(row)
            if budget is not None:
                await session.refresh(budget)
            view = end_user_view(admin, row, budget, await _customer(admin, session, body.user_id))
    except IntegrityError:  # created by a concurrent call (or by the spend writer) meanwhile
        raise invalid_request(
            f"Customer already exists, passed user_id={body.user_id}. Please pass a new user_id.", param="user_id"
        ) from None
    _forget(admin, [body.user_id])
    return view


async def update_end_user(
    admin: Admin, body: EndUserUpdate, *, caller: Principal, request: HTTPConnection
) -> JSONObject:
    budget_values = _check_fields(admin, body)
    await _check_stripe(admin, body)
    actor = audit.actor_of(caller)[0]
    async with admin.db.session() as session:
        row = await session.get(EndUser, body.user_id, with_for_update=not admin.db.sqlite)
        if row is None:
            raise ProxyError(ErrorKind.NOT_FOUND, f"End User Id={body.user_id} does not exist in db", param="user_id")
        before = _audit_end_user(row)
        budget = await session.get(Budget, row.budget_id) if row.budget_id else None
        if "budget_id" in body.given():
            budget = await _linked_budget(session, body.budget_id) if body.budget_id is not None else None
            row.budget_id = budget.budget_id if budget is not None else None
        elif budget_values:
            shared = (
                budget is not None
                and (
                    await session.execute(
                        select(func.count()).select_from(EndUser).where(EndUser.budget_id == budget.budget_id)
                    )
                ).scalar_one()
                > 1
            )
            if budget is None or shared:
                copy = Budget(budget_id=str(uuid.uuid4()), created_by=actor, model_max_budget={})
                if budget is not None:  # start from the shared budget's limits
                    for name in BUDGET_FIELDS:
                        setattr(copy, name, getattr(budget, name))
                budget = copy
                session.add(budget)
            apply_budget(budget, budget_values, actor)
            await session.flush()
            row.budget_id = budget.budget_id
        _apply_end_user(row, body)
        await session.flush()
        await _link_stripe(admin, session, body.user_id, body.stripe_customer_id)
        await audit.record(
            session,
            request,
            caller,
            action="end_user.update",
            target=body.user_id,
            before=before,
            after=_audit_end_user(row),
        )
        await session.refresh(row)
        if budget is not None:
            await session.refresh(budget)
        view = end_user_view(admin, row, budget, await _customer(admin, session, body.user_id))
    _forget(admin, [body.user_id])
    return view


async def end_user_info(admin: Admin, user_id: str) -> JSONObject:
    async with admin.db.session() as session:
        row = await session.get(EndUser, user_id)
        if row is None:
            raise ProxyError(ErrorKind.NOT_FOUND, f"End User Id={user_id} does not exist in db", param="end_user_id")
        budget = await session.get(Budget, row.budget_id) if row.budget_id else None
        return end_user_view(admin, row, budget, await _customer(admin, session, user_id))


async def list_end_users(admin: Admin, *, page: int, size: int) -> list[JSONObject]:
    async with admin.db.session() as session:
        query = (
            select(EndUser, Budget)
            .outerjoin(Budget, Budget.budget_id == EndUser.budget_id)
            .order_by(EndUser.user_id)
            .offset((page - 1) * size)
            .limit(size)
        )
        rows = (await session.execute(query)).all()
        customers: dict[str, str | None] = {}
        if admin.billing is not None and rows:
            from proxyllm.db.tables_billing import BillingAccount

            linked = await session.execute(
                select(BillingAccount.account_id, BillingAccount.stripe_customer_id).where(
                    BillingAccount.account_type == KIND,
                    BillingAccount.account_id.in_([r.user_id for r, _ in rows]),
                )
            )
            customers = {account_id: customer for account_id, customer in linked.all()}
        return [end_user_view(admin, row, budget, customers.get(row.user_id)) for row, budget in rows]


async def delete_end_users(
    admin: Admin, user_ids: list[str], *, caller: Principal, request: HTTPConnection
) -> JSONObject:
    ids = list(dict.fromkeys(user_ids))
    async with admin.db.session() as session:
        rows = (await session.execute(select(EndUser).where(EndUser.user_id.in_(ids)))).scalars().all()
        missing = sorted(set(ids) - {r.user_id for r in rows})
        if missing:
            raise _not_found_end_users(missing, "user_ids")
        if admin.billing is not None:
            from proxyllm.db.tables_billing import BillingAccount

            accounts = BillingAccount.account_type == KIND, BillingAccount.account_id.in_(ids)
            balances = (await session.execute(select(BillingAccount.balance).where(*accounts))).scalars().all()
            if any(balance != 0 for balance in balances):
                raise invalid_request("an end user with a non-zero prepaid balance cannot be deleted", param="user_ids")
            await session.execute(delete(BillingAccount).where(*accounts))
        for row in rows:
            await audit.record(
                session, request, caller, action="end_user.delete", target=row.user_id, before=_audit_end_user(row)
            )
        result = await session.execute(delete(EndUser).where(EndUser.user_id.in_(ids)))
        count = int(getattr(result, "rowcount", 0) or 0)
    _forget(admin, ids)
    return {"deleted_customers": count, "message": f"Successfully deleted customers with ids: {ids}"}


async def set_blocked(
    admin: Admin, user_ids: list[str], blocked: bool, *, caller: Principal, request: HTTPConnection
) -> list[JSONObject]:
    """Block (creating end users not seen yet, as LiteLLM does) or unblock (existing ones only)."""
    ids = list(dict.fromkeys(user_ids))
    action = "end_user.block" if blocked else "end_user.unblock"
    async with admin.db.session() as session:
        if blocked:
            dialect = sqlite if admin.db.sqlite else postgresql
            insert = dialect.insert(EndUser.__table__)
            for user_id in ids:
                await session.execute(
                    insert.values(user_id=user_id, blocked=True, spend=Decimal(0), metadata={}).on_conflict_do_update(
                        index_elements=["user_id"], set_={"blocked": True, "updated_at": func.now()}
                    )
                )
        else:
            found = set((await session.execute(select(EndUser.user_id).where(EndUser.user_id.in_(ids)))).scalars())
            missing = sorted(set(ids) - found)
            if missing:
                raise _not_found_end_users(missing, "user_ids")
            await session.execute(
                update(EndUser).where(EndUser.user_id.in_(ids)).values(blocked=False, updated_at=func.now())
            )
        for user_id in ids:
            await audit.record(session, request, caller, action=action, target=user_id, after={"blocked": blocked})
        rows = (
            await session.execute(
                select(EndUser, Budget)
                .outerjoin(Budget, Budget.budget_id == EndUser.budget_id)
                .where(EndUser.user_id.in_(ids))
                .order_by(EndUser.user_id)
                .execution_options(populate_existing=True)
            )
        ).all()
        views = [
            end_user_view(admin, row, budget, await _customer(admin, session, row.user_id)) for row, budget in rows
        ]
    _forget(admin, ids)
    return views


def _forget(admin: Admin, user_ids: list[str]) -> None:
    admin.end_users.invalidate(user_ids)
    if admin.billing is not None:
        for user_id in user_ids:
            admin.billing.forget((KIND, user_id))
