"""``/budget/*``: shared budget objects (LiteLLM's budget table) that end users point at."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from proxyllm.accounts.budget_schemas import BudgetDelete, BudgetNew, BudgetRequest, BudgetUpdate
from proxyllm.admin import budgets as service
from proxyllm.core.bounds import MAX_ID
from proxyllm.core.jsontypes import JSONObject
from proxyllm.server.deps import Admin
from proxyllm.server.routes.end_user_deps import EndUserAdmin, report_ignored

router = APIRouter(tags=["budgets"])


@router.post("/budget/new")
async def budget_new(
    body: BudgetNew, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    return await service.new_budget(admin, body, caller=caller, request=request)


@router.post("/budget/update")
async def budget_update(
    body: BudgetUpdate, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    return await service.update_budget(admin, body, caller=caller, request=request)


@router.post("/budget/info")
async def budget_info(body: BudgetRequest, response: Response, admin: EndUserAdmin, _: Admin) -> list[JSONObject]:
    report_ignored(response, body)
    return await service.budgets_info(admin, body.budgets)


@router.get("/budget/list")
async def budget_list(admin: EndUserAdmin, _: Admin) -> list[JSONObject]:
    return await service.list_budgets(admin)


@router.get("/budget/settings")
async def budget_settings(
    admin: EndUserAdmin, _: Admin, budget_id: str = Query(min_length=1, max_length=MAX_ID)
) -> list[JSONObject]:
    return await service.budget_settings(admin, budget_id)


@router.post("/budget/delete")
async def budget_delete(
    body: BudgetDelete, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    return await service.delete_budget(admin, body.id, caller=caller, request=request)
