"""End users under both of LiteLLM's names: ``/end_user/*`` and ``/customer/*`` (one service).

An end user is the ``user`` of a request (or LiteLLM's end-user header): it may point at a shared
budget (``budget_id``) or get one of its own from budget fields, be blocked, and be linked to a
Stripe customer (``stripe_customer_id``) when billing charges end users.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from proxyllm.accounts.budget_schemas import EndUserIds, EndUserNew, EndUserUpdate
from proxyllm.admin import end_users as service
from proxyllm.core.bounds import MAX_ID
from proxyllm.core.jsontypes import JSONObject
from proxyllm.server.deps import Admin
from proxyllm.server.routes.end_user_deps import EndUserAdmin, report_ignored

router = APIRouter(tags=["end users"])


@router.post("/end_user/new")
@router.post("/customer/new")
async def end_user_new(
    body: EndUserNew, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    return await service.new_end_user(admin, body, caller=caller, request=request)


@router.post("/end_user/update")
@router.post("/customer/update")
async def end_user_update(
    body: EndUserUpdate, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    return await service.update_end_user(admin, body, caller=caller, request=request)


@router.get("/end_user/info")
@router.get("/customer/info")
async def end_user_info(
    admin: EndUserAdmin, _: Admin, end_user_id: str = Query(min_length=1, max_length=MAX_ID)
) -> JSONObject:
    return await service.end_user_info(admin, end_user_id)


@router.get("/end_user/list")
@router.get("/customer/list")
async def end_user_list(
    admin: EndUserAdmin,
    _: Admin,
    page: int = Query(default=1, ge=1, le=1_000_000),
    size: int = Query(default=1000, ge=1, le=10_000),
) -> list[JSONObject]:
    return await service.list_end_users(admin, page=page, size=size)


@router.post("/end_user/delete")
@router.post("/customer/delete")
async def end_user_delete(
    body: EndUserIds, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    return await service.delete_end_users(admin, body.user_ids, caller=caller, request=request)


@router.post("/end_user/block")
@router.post("/customer/block")
async def end_user_block(
    body: EndUserIds, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    return {"blocked_users": await service.set_blocked(admin, body.user_ids, True, caller=caller, request=request)}


@router.post("/end_user/unblock")
@router.post("/customer/unblock")
async def end_user_unblock(
    body: EndUserIds, request: Request, response: Response, admin: EndUserAdmin, caller: Admin
) -> JSONObject:
    report_ignored(response, body)
    views = await service.set_blocked(admin, body.user_ids, False, caller=caller, request=request)
    return {"unblocked_users": views}
