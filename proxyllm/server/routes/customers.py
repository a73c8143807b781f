"""``/customer/*``: end users (the ``user`` field of requests) as billing accounts linked to Stripe."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.db.tables_billing import BillingAccount
from proxyllm.server.deps import Admin
from proxyllm.server.routes.stripe import BillingDep

router = APIRouter(tags=["customers"])


class CustomerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=255)
    stripe_customer_id: str | None = None


class CustomerDelete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_ids: list[str] = Field(min_length=1)


def _view(row: BillingAccount) -> dict[str, Any]:
    return {"user_id": row.account_id, "stripe_customer_id": row.stripe_customer_id}


@router.post("/customer/new")
@router.post("/customer/update")
async def upsert_customer(body: CustomerBody, billing: BillingDep, _: Admin) -> dict[str, Any]:
    account = ("end_user", body.user_id)
    if body.stripe_customer_id:
        await billing.link_customer(account, body.stripe_customer_id)
    async with billing.db.session() as session:
        return _view(await billing.ledger.get(session, account))


@router.get("/customer/info")
async def customer_info(billing: BillingDep, _: Admin, end_user_id: str = Query()) -> dict[str, Any]:
    async with billing.db.session() as session:
        row = await session.get(BillingAccount, ("end_user", end_user_id))
        if row is None:
            raise ProxyError(ErrorKind.NOT_FOUND, f"end user '{end_user_id}' does not exist", param="end_user_id")
        return _view(row)


@router.get("/customer/list")
async def customer_list(billing: BillingDep, _: Admin) -> list[dict[str, Any]]:
    async with billing.db.session() as session:
        rows = (
            (
                await session.execute(
                    select(BillingAccount)
                    .where(BillingAccount.account_type == "end_user")
                    .order_by(BillingAccount.account_id)
                )
            )
            .scalars()
            .all()
        )
        return [_view(r) for r in rows]


@router.post("/customer/delete")
async def customer_delete(body: CustomerDelete, billing: BillingDep, _: Admin) -> dict[str, Any]:
    async with billing.db.session() as session:
        rows = (
            (
                await session.execute(
                    select(BillingAccount).where(
                        BillingAccount.account_type == "end_user", BillingAccount.account_id.in_(body.user_ids)
                    )
                )
            )
            .scalars()
            .all()
        )
        if any(row.balance != 0 for row in rows):
            raise ProxyError(ErrorKind.INVALID_REQUEST, "an end user with a non-zero balance cannot be deleted")
        await session.execute(
            delete(BillingAccount).where(
                BillingAccount.account_type == "end_user", BillingAccount.account_id.in_(body.user_ids)
            )
        )
    for user_id in body.user_ids:
        billing.forget(("end_user", user_id))
    return {"deleted_customers": body.user_ids}
