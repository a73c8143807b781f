"""``/budget/*`` and ``/end_user/*`` (``/customer/*``) with LiteLLM's documented requests: response
fields, errors in the API's shape, concurrency, hostile fields, the audit log. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.accounts.conftest import new_key
from tests.conftest import ProxyServer

BUDGET_FIELDS = {
    "budget_id",
    "max_budget",
    "soft_budget",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "model_max_budget",
    "budget_duration",
    "budget_reset_at",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
}
END_USER_FIELDS = {
    "user_id",
    "blocked",
    "alias",
    "spend",
    "allowed_model_region",
    "default_model",
    "budget_id",
    "litellm_budget_table",
    "object_permission_id",
    "object_permission",
}


def error_of(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    assert {"message", "type", "param", "code"} <= error.keys()
    return error


async def test_budget_endpoints_in_litellms_shapes(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    # LiteLLM's documented request (docs: proxy/users, "Create a budget")
    made = await admin.post(
        "/budget/new",
        json={
            "budget_id": "pro-tier",
            "max_budget": 10,
            "soft_budget": 8.5,
            "budget_duration": "30d",
            "tpm_limit": 100000,
            "rpm_limit": 1000,
            "max_parallel_requests": 10,
            "model_max_budget": {"gpt-fake": {"max_budget": 5, "budget_duration": "1d"}},
        },
    )
    assert made.status_code == 200, made.text
    budget = made.json()
    assert budget.keys() >= BUDGET_FIELDS
    assert budget["max_budget"] == 10 and budget["soft_budget"] == 8.5 and budget["rpm_limit"] == 1000
    assert budget["model_max_budget"] == {"gpt-fake": {"max_budget": 5.0, "budget_duration": "1d"}}
    assert budget["budget_reset_at"] is not None and budget["created_by"] == "master"
    assert error_of(await admin.post("/budget/new", json={"budget_id": "pro-tier"}), 400)["message"] == (
        "Budget with id 'pro-tier' already exists."
    )
    generated = (await admin.post("/budget/new", json={"max_budget": 1})).json()["budget_id"]
    assert len(generated) == 36

    infos = (await admin.post("/budget/info", json={"budgets": ["pro-tier", "nope"]})).json()
    assert [b["budget_id"] for b in infos] == ["pro-tier"]
    error_of(await admin.post("/budget/info", json={"budgets": []}), 400)
    listed = {b["budget_id"] for b in (await admin.get("/budget/list")).json()}
    assert listed == {"pro-tier", generated}
    settings = (await admin.get("/budget/settings", params={"budget_id": "pro-tier"})).json()
    by_name = {s["field_name"]: s for s in settings}
    assert by_name["max_budget"]["field_value"] == 10 and by_name["max_budget"]["field_type"] == "Float"
    assert {"field_description", "stored_in_db", "field_default_value"} <= by_name["tpm_limit"].keys()

    updated = await admin.post("/budget/update", json={"budget_id": "pro-tier", "max_budget": 20, "soft_budget": None})
    assert updated.status_code == 200, updated.text
    assert updated.json()["max_budget"] == 20 and updated.json()["soft_budget"] is None
    assert updated.json()["rpm_limit"] == 1000  # fields not sent are kept
    error_of(await admin.post("/budget/update", json={"budget_id": "missing", "max_budget": 1}), 404)

    await admin.post("/end_user/new", json={"user_id": "on-pro", "budget_id": "pro-tier"})
    deleted = await admin.post("/budget/delete", json={"id": "pro-tier"})
    assert deleted.status_code == 200 and deleted.json()["budget_id"] == "pro-tier"
    after = (await admin.get("/end_user/info", params={"end_user_id": "on-pro"})).json()
    assert after["budget_id"] is None and after["litellm_budget_table"] is None
    error_of(await admin.post("/budget/delete", json={"id": "pro-tier"}), 404)

    audit = (await admin.get("/audit/logs", params={"target_type": "budget"})).json()
    actions = [row["action"] for row in (audit["data"] if isinstance(audit, dict) else audit)]
    assert {"budget.new", "budget.update", "budget.delete"} <= set(actions)


async def test_end_user_endpoints_in_litellms_shapes(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    # LiteLLM's documented request (docs: proxy/customers), and its /end_user alias
    made = await admin.post(
        "/customer/new",
        json={
            "user_id": "ishaan-jaff-3",
            "alias": "Ishaan",
            "max_budget": 5,
            "budget_duration": "1mo",
            "allowed_model_region": "eu",
            "default_model": "gpt-fake",
            "metadata": {"data_training_opt_out": True},
            "object_permission": {"vector_stores": ["vs-1"]},
        },
    )
    assert made.status_code == 200, made.text
    assert made.headers["x-litellm-ignored-fields"] == "object_permission"
    user = made.json()
    assert user.keys() >= END_USER_FIELDS
    assert user["alias"] == "Ishaan" and user["allowed_model_region"] == "eu" and user["spend"] == 0
    own = user["litellm_budget_table"]
    assert own["max_budget"] == 5 and own["budget_duration"] == "1mo" and user["budget_id"] == own["budget_id"]
    same = (await admin.get("/end_user/info", params={"end_user_id": "ishaan-jaff-3"})).json()
    assert same["litellm_budget_table"] == own and same["metadata"] == {"data_training_opt_out": True}

    duplicate = error_of(await admin.post("/end_user/new", json={"user_id": "ishaan-jaff-3"}), 400)
    assert duplicate["message"].startswith("Customer already exists, passed user_id=ishaan-jaff-3")
    both = error_of(await admin.post("/end_user/new", json={"user_id": "x", "budget_id": "b", "max_budget": 1}), 400)
    assert both["param"] == "budget_id"
    assert error_of(await admin.post("/end_user/new", json={"user_id": "x", "budget_id": "nope"}), 400)["param"] == (
        "budget_id"
    )
    assert (
        error_of(await admin.post("/end_user/new", json={"user_id": "x", "default_model": "nope"}), 400)["param"]
        == "default_model"
    )

    # a shared budget edited through one end user: that end user gets its own copy, the others keep theirs
    await admin.post("/budget/new", json={"budget_id": "shared", "max_budget": 1, "rpm_limit": 7})
    for user_id in ("a", "b"):
        assert (await admin.post("/end_user/new", json={"user_id": user_id, "budget_id": "shared"})).status_code == 200
    changed = (await admin.post("/end_user/update", json={"user_id": "a", "max_budget": 3})).json()
    assert changed["budget_id"] != "shared"
    assert changed["litellm_budget_table"]["max_budget"] == 3 and changed["litellm_budget_table"]["rpm_limit"] == 7
    other = (await admin.get("/customer/info", params={"end_user_id": "b"})).json()
    assert other["budget_id"] == "shared" and other["litellm_budget_table"]["max_budget"] == 1
    relinked = (await admin.post("/customer/update", json={"user_id": "a", "budget_id": "shared"})).json()
    assert relinked["budget_id"] == "shared"
    error_of(await admin.post("/end_user/update", json={"user_id": "ghost", "alias": "x"}), 404)

    listed = (await admin.get("/end_user/list")).json()
    assert [u["user_id"] for u in listed] == ["a", "b", "ishaan-jaff-3"]
    assert [u["user_id"] for u in (await admin.get("/customer/list", params={"page": 2, "size": 2})).json()] == [
        "ishaan-jaff-3"
    ]

    missing = error_of(await admin.post("/end_user/delete", json={"user_ids": ["a", "ghost"]}), 404)
    assert "ghost" in missing["message"]
    deleted = await admin.post("/customer/delete", json={"user_ids": ["a", "b"]})
    assert deleted.status_code == 200 and deleted.json()["deleted_customers"] == 2
    assert [u["user_id"] for u in (await admin.get("/end_user/list")).json()] == ["ishaan-jaff-3"]


async def test_only_admins_manage_budgets_and_end_users(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    key = (await new_key(shared_admin))["key"]
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={"authorization": f"Bearer {key}"}) as client:
        for method, path, body in (
            ("POST", "/budget/new", {"budget_id": "mine"}),
            ("GET", "/budget/list", None),
            ("POST", "/end_user/new", {"user_id": "mine"}),
            ("GET", "/customer/list", None),
            ("POST", "/end_user/block", {"user_ids": ["someone"]}),
        ):
            error_of(await client.request(method, path, json=body), 403)
    async with httpx.AsyncClient(base_url=shared_proxy.url) as anonymous:
        error_of(await anonymous.get("/budget/list"), 401)


async def test_concurrent_creations_of_one_id_never_500(shared_admin: httpx.AsyncClient) -> None:
    """On the shared proxy: the ids are this test's own."""
    admin = shared_admin
    budgets = await asyncio.gather(*(admin.post("/budget/new", json={"budget_id": "race"}) for _ in range(10)))
    assert sorted(r.status_code for r in budgets) == [200] + [400] * 9
    users = await asyncio.gather(*(admin.post("/end_user/new", json={"user_id": "racer"}) for _ in range(10)))
    assert sorted(r.status_code for r in users) == [200] + [400] * 9
    blocks = await asyncio.gather(*(admin.post("/end_user/block", json={"user_ids": ["new-1"]}) for _ in range(10)))
    assert {r.status_code for r in blocks} == {200}


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/budget/new", {"max_budget": -1}, "max_budget"),
        ("/budget/new", {"max_budget": 1e309}, None),  # refused as JSON already (invalid_json)
        ("/budget/new", {"max_budget": 10**12}, "max_budget"),
        ("/budget/new", {"max_budget": "lots"}, "max_budget"),
        ("/budget/new", {"tpm_limit": 2**31}, "tpm_limit"),
        ("/budget/new", {"rpm_limit": -5}, "rpm_limit"),
        ("/budget/new", {"budget_duration": "forever"}, "budget_duration"),
        ("/budget/new", {"budget_id": "b" * 256}, "budget_id"),
        ("/budget/new", {"budget_id": "a\x00b"}, "budget_id"),
        ("/budget/new", {"budget_reset_at": "99999-01-01"}, "budget_reset_at"),
        ("/budget/new", {"model_max_budget": {"m": {"max_budget": -1}}}, "model_max_budget.m.max_budget"),
        ("/budget/new", {"model_max_budget": {"m": {"unknown": 1}}}, "model_max_budget.m.unknown"),
        ("/budget/info", {"budgets": "pro-tier"}, "budgets"),
        ("/end_user/new", {"user_id": "u" * 256}, "user_id"),
        ("/end_user/new", {"user_id": "x\x00"}, "user_id"),
        ("/end_user/new", {"user_id": 7}, "user_id"),
        ("/end_user/new", {"user_id": "ok", "spend": float("-1")}, "spend"),
        ("/end_user/new", {"user_id": "ok", "allowed_model_region": "mars"}, "allowed_model_region"),
        ("/end_user/new", {"user_id": "ok", "alias": "a" * 256}, "alias"),
        ("/end_user/block", {"user_ids": []}, "user_ids"),
        ("/end_user/block", {"user_ids": ["x"] * 1001}, "user_ids"),
        ("/end_user/delete", {"user_ids": [None]}, "user_ids.0"),
    ],
)
async def test_hostile_admin_fields_are_400(
    shared_admin: httpx.AsyncClient, path: str, body: dict[str, Any], param: str | None
) -> None:
    content = json.dumps(body).replace("Infinity", "1e309").encode()  # a JSON number that overflows to inf
    resp = await shared_admin.post(path, content=content, headers={"content-type": "application/json"})
    error = error_of(resp, 400)
    assert error["param"] == param, error
