"""Users and teams through the admin API: LiteLLM field names, membership, model access.

The team and input-error cases share one proxy per module (``shared_proxy``; their ids are their own); the
user lifecycle reads the first page of /user/list and keeps a proxy of its own."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.accounts.conftest import HI, new_key, sdk
from tests.conftest import ProxyServer


async def test_user_lifecycle(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    created = (
        await admin.post(
            "/user/new",
            json={"user_id": "ann", "user_email": "ann@example.com", "max_budget": 5, "models": ["gpt-fake"]},
        )
    ).json()
    assert created["user_id"] == "ann" and created["key"].startswith("sk-")
    await sdk(proxy, created["key"]).chat.completions.create(model="gpt-fake", messages=HI)
    info = (await admin.get("/user/info", params={"user_id": "ann"})).json()
    assert info["user_info"]["user_email"] == "ann@example.com" and len(info["keys"]) == 1
    updated = (await admin.post("/user/update", json={"user_id": "ann", "max_budget": 7})).json()
    assert updated["max_budget"] == 7 and updated["user_email"] == "ann@example.com"
    listing = (await admin.get("/user/list", params={"page_size": 10})).json()
    assert "ann" in {u["user_id"] for u in listing["users"]} and listing["total"] >= 1
    assert (await admin.post("/user/delete", json={"user_ids": ["ann"]})).status_code == 200
    assert (await admin.get("/user/info", params={"user_id": "ann"})).status_code == 404
    with pytest.raises(openai.AuthenticationError):
        await sdk(proxy, created["key"]).chat.completions.create(model="gpt-fake", messages=HI)


async def test_team_lifecycle_and_members(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    team = (
        await shared_admin.post(
            "/team/new",
            json={
                "team_id": "core",
                "team_alias": "Core",
                "models": ["gpt-fake"],
                "members_with_roles": [{"user_id": "bo", "role": "admin"}],
            },
        )
    ).json()
    assert team["members_with_roles"] == [{"user_id": "bo", "user_email": None, "role": "admin"}]
    added = (await shared_admin.post("/team/member_add", json={"team_id": "core", "member": {"user_id": "cy"}})).json()
    assert {m["user_id"] for m in added["members_with_roles"]} == {"bo", "cy"}
    removed = (await shared_admin.post("/team/member_delete", json={"team_id": "core", "user_id": "bo"})).json()
    assert [m["user_id"] for m in removed["members_with_roles"]] == ["cy"]
    missing = await shared_admin.post("/team/member_delete", json={"team_id": "core", "user_id": "bo"})
    assert missing.status_code == 400

    key = await new_key(shared_admin, team_id="core")
    client = sdk(shared_proxy, key["key"])
    await client.chat.completions.create(model="gpt-fake", messages=HI)
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="llama3", messages=HI)
    assert info.value.type == "team_model_access_denied"

    await shared_admin.post("/team/update", json={"team_id": "core", "models": ["gpt-fake", "llama3"]})
    await client.chat.completions.create(model="llama3", messages=HI)
    info = (await shared_admin.get("/team/info", params={"team_id": "core"})).json()
    assert info["team_info"]["team_alias"] == "Core" and len(info["keys"]) == 1
    assert "core" in {t["team_id"] for t in (await shared_admin.get("/team/list")).json()}

    await shared_admin.post("/team/update", json={"team_id": "core", "blocked": True})
    with pytest.raises(openai.AuthenticationError) as blocked:
        await client.chat.completions.create(model="gpt-fake", messages=HI)
    assert "team 'core'" in blocked.value.message
    await shared_admin.post("/team/delete", json={"team_ids": ["core"]})
    assert (await shared_admin.get("/team/info", params={"team_id": "core"})).status_code == 404


async def test_admin_input_errors(shared_admin: httpx.AsyncClient) -> None:
    assert (await shared_admin.post("/user/new", json={"user_id": "dup", "auto_create_key": False})).status_code == 200
    dup = await shared_admin.post("/user/new", json={"user_id": "dup"})
    assert dup.status_code == 400 and dup.json()["error"]["param"] == "user_id"
    bad = await shared_admin.post("/team/new", json={"budget_duration": "forever"})
    assert bad.status_code == 400 and "budget_duration" in bad.json()["error"]["message"]
    unknown = await shared_admin.post("/team/member_add", json={"team_id": "nope", "member": {"user_id": "x"}})
    assert unknown.status_code == 404
    role = await shared_admin.post("/user/new", json={"user_role": "emperor"})
    assert role.status_code == 400 and role.json()["error"]["param"] == "user_role"
