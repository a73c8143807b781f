"""LiteLLM's documented admin requests are accepted and answered with LiteLLM's fields."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from proxyllm.accounts.keys import hash_key
from tests.accounts.conftest import new_key
from tests.conftest import ProxyServer


async def test_key_generate_takes_litellm_fields_and_returns_token_id(shared_admin: httpx.AsyncClient) -> None:
    answer = await shared_admin.post(
        "/key/generate",
        json={
            "models": ["gpt-fake"],
            "aliases": {"my-gpt": "gpt-fake"},
            "duration": None,
            "max_parallel_requests": 0,
            "metadata": {"app": "billing"},
            "key_alias": "litellm-shaped",
            "config": {},
            "permissions": {"pii_masking": False},
            "soft_budget": 10,
            "guardrails": ["g1"],
        },
    )
    assert answer.status_code == 200, answer.text
    key = answer.json()
    assert key["token_id"] == hash_key(key["key"]) == key["token"]
    assert key["aliases"] == {"my-gpt": "gpt-fake"} and key["expires"] is None
    assert key["max_parallel_requests"] == 0 and key["metadata"]["app"] == "billing"
    ignored = {name.strip() for name in answer.headers["x-litellm-ignored-fields"].split(",")}
    assert ignored == {"config", "permissions", "soft_budget", "guardrails"}
    info = await shared_admin.get("/key/info", params={"key": key["key"]})
    assert info.status_code == 200 and info.json()["info"]["aliases"] == {"my-gpt": "gpt-fake"}
    # nothing ignored: no header
    plain = await shared_admin.post("/key/generate", json={})
    assert plain.status_code == 200 and "x-litellm-ignored-fields" not in plain.headers


async def test_key_aliases_name_models_for_that_key(shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient) -> None:
    key = await new_key(shared_admin, aliases={"my-gpt": "gpt-fake"})
    async with httpx.AsyncClient(base_url=shared_proxy.url, timeout=30) as client:
        answer = await client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key['key']}"},
            json={"model": "my-gpt", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-litellm-model-group"] == "gpt-fake"
        other = await new_key(shared_admin)
        refused = await client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {other['key']}"},
            json={"model": "my-gpt", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert refused.status_code == 404, refused.text  # an alias belongs to its key only
    unknown = await shared_admin.post("/key/generate", json={"aliases": {"x": "no-such-model"}})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "aliases"


async def test_a_key_with_max_parallel_requests_0_serves_nothing(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    key = await new_key(shared_admin, max_parallel_requests=0)
    async with httpx.AsyncClient(base_url=shared_proxy.url, timeout=30) as client:
        answer = await client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key['key']}"},
            json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert answer.status_code == 429, answer.text


async def test_key_update_info_and_delete_shapes(shared_admin: httpx.AsyncClient) -> None:
    key = await new_key(shared_admin, duration="1h")
    assert key["expires"] is not None
    updated = await shared_admin.post("/key/update", json={"key": key["key"], "duration": None, "max_budget": 3})
    assert updated.status_code == 200, updated.text
    assert updated.json()["key"] == key["token"] and updated.json()["expires"] is None
    assert updated.json()["max_budget"] == 3
    missing = await shared_admin.get("/key/info", params={"key": "sk-never-made"})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    deleted = await shared_admin.post("/key/delete", json={"keys": [key["key"]]})
    assert deleted.json() == {"deleted_keys": [key["token"]]}
    assert (await shared_admin.get("/key/info", params={"key": key["key"]})).status_code == 404


async def test_user_new_with_duration_and_teams_and_update_with_spend(shared_admin: httpx.AsyncClient) -> None:
    assert (
        await shared_admin.post("/team/new", json={"team_id": "eng", "team_alias": "Engineering"})
    ).status_code == 200
    made = await shared_admin.post(
        "/user/new",
        json={
            "user_id": "ann",
            "user_email": "ann@example.com",
            "user_role": "internal_user",
            "duration": "30d",
            "teams": ["eng"],
            "max_budget": 10,
            "send_invite_email": False,
        },
    )
    assert made.status_code == 200, made.text
    user = made.json()
    assert user["key"].startswith("sk-") and user["expires"] is not None and user["teams"] == ["eng"]
    assert made.headers["x-litellm-ignored-fields"] == "send_invite_email"

    spent = await shared_admin.post("/user/update", json={"user_id": "ann", "spend": 2.5, "user_alias": "Ann"})
    assert spent.status_code == 200, spent.text
    assert spent.json()["data"]["spend"] == 2.5 and spent.json()["user_id"] == "ann"

    info = (await shared_admin.get("/user/info", params={"user_id": "ann"})).json()
    assert info["user_info"]["spend"] == 2.5 and len(info["keys"]) == 1
    [team] = info["teams"]
    assert team["team_id"] == "eng" and team["team_alias"] == "Engineering"
    assert team["members_with_roles"] == [{"user_id": "ann", "user_email": "ann@example.com", "role": "user"}]
    assert team["user_role_in_team"] == "user"


async def test_team_new_update_and_members_litellm_style(shared_admin: httpx.AsyncClient) -> None:
    await shared_admin.post(
        "/user/new", json={"user_id": "kim", "user_email": "kim@example.com", "auto_create_key": False}
    )
    made = await shared_admin.post(
        "/team/new",
        json={
            "team_alias": "Search",
            "models": ["gpt-fake"],
            "model_aliases": {"fast": "gpt-fake"},
            "tags": ["prod"],
            "team_member_permissions": ["/key/generate", "/key/update"],
            "organization_id": "org-1",
            "members_with_roles": [{"role": "admin", "user_email": "kim@example.com"}, {"user_id": "lee"}],
            "metadata": {"cost_center": "42"},
        },
    )
    assert made.status_code == 200, made.text
    team = made.json()
    team_id = team["team_id"]
    assert team["model_aliases"] == {"fast": "gpt-fake"} and team["tags"] == ["prod"]
    assert team["team_member_permissions"] == ["/key/generate", "/key/update"] and team["organization_id"] == "org-1"
    assert team["metadata"]["cost_center"] == "42"
    assert {(m["user_id"], m["role"]) for m in team["members_with_roles"]} == {("kim", "admin"), ("lee", "user")}

    updated = await shared_admin.post(
        "/team/update", json={"team_id": team_id, "team_alias": "Search v2", "tags": ["x"]}
    )
    assert updated.status_code == 200, updated.text
    assert set(updated.json()) == {"team_id", "data"}
    assert updated.json()["data"]["team_alias"] == "Search v2" and updated.json()["data"]["tags"] == ["x"]

    # a new member by email: a user is created with that email
    added = await shared_admin.post(
        "/team/member_add", json={"team_id": team_id, "member": {"role": "user", "user_email": "new@example.com"}}
    )
    assert added.status_code == 200, added.text
    body = added.json()
    [new_user] = body["updated_users"]
    assert new_user["user_email"] == "new@example.com"
    assert body["updated_team_memberships"] == [{"user_id": new_user["user_id"], "team_id": team_id, "role": "user"}]
    assert body["team_id"] == team_id and len(body["members_with_roles"]) == 3

    duplicate = await shared_admin.post("/team/member_add", json={"team_id": team_id, "member": {"user_id": "lee"}})
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == "team_member_already_in_team"
    roles = {
        m["user_id"]: m["role"]
        for m in (await shared_admin.get("/team/info", params={"team_id": team_id})).json()["team_info"][
            "members_with_roles"
        ]
    }
    assert roles["lee"] == "user"  # unchanged by the refused add

    promoted = await shared_admin.post(
        "/team/member_update",
        json={"team_id": team_id, "user_email": "new@example.com", "role": "admin", "max_budget_in_team": 5},
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == {
        "team_id": team_id,
        "user_id": new_user["user_id"],
        "user_email": "new@example.com",
        "role": "admin",
    }
    assert promoted.headers["x-litellm-ignored-fields"] == "max_budget_in_team"
    removed = await shared_admin.post("/team/member_delete", json={"team_id": team_id, "user_email": "kim@example.com"})
    assert removed.status_code == 200
    assert "kim" not in {m["user_id"] for m in removed.json()["members_with_roles"]}
    nobody = await shared_admin.post("/team/member_update", json={"team_id": team_id, "role": "admin"})
    assert nobody.status_code == 400


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/key/generate", {"aliases": {"a": 1}}, "aliases"),
        ("/key/generate", {"aliases": {"x" * 300: "y"}}, "aliases"),
        ("/key/generate", {"max_parallel_requests": 2**40}, "max_parallel_requests"),
        ("/user/update", {"user_id": "u", "spend": -1}, "spend"),
        ("/user/update", {"user_id": "u", "spend": "NaN"}, "spend"),
        ("/user/update", {"user_id": "u", "spend": None}, "spend"),
        ("/user/new", {"duration": "forever"}, "duration"),
        ("/team/new", {"tags": "prod"}, "tags"),
        ("/team/new", {"organization_id": "o\u0000" + "x" * 300}, "organization_id"),
        ("/team/member_add", {"team_id": "t", "member": {"role": "admin"}}, "member"),
        ("/team/member_update", {"team_id": "t", "user_id": "u", "role": "owner"}, "role"),
    ],
)
async def test_bad_values_of_litellm_fields_are_400(
    shared_admin: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    answer = await shared_admin.post(path, json=body)
    assert answer.status_code == 400, answer.text
    assert param in answer.text


async def test_hostile_unknown_field_names_never_reach_the_header(shared_admin: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"evil\r\nset-cookie: x": 1, "fine_name": 2}
    body.update({f"f{i}": i for i in range(100)})
    answer = await shared_admin.post("/key/generate", json=body)
    assert answer.status_code == 200, answer.text
    header = answer.headers["x-litellm-ignored-fields"]
    assert "\n" not in header and "evil" not in header and "set-cookie" not in answer.headers
    assert header.endswith("...") and "fine_name" in header


async def test_concurrent_team_new_with_the_same_new_member_all_succeed(postgres_admin: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(
            postgres_admin.post("/team/new", json={"members_with_roles": [{"user_id": "shared-new", "role": "user"}]})
            for _ in range(10)
        )
    )
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200]
    info = (await postgres_admin.get("/user/info", params={"user_id": "shared-new"})).json()
    assert len(info["teams"]) == 10


async def test_concurrent_user_new_of_one_id_is_one_200_and_400s(postgres_admin: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(
        *(postgres_admin.post("/user/new", json={"user_id": "once", "auto_create_key": False}) for _ in range(8))
    )
    assert sorted(a.status_code for a in answers) == [200] + [400] * 7, [a.text for a in answers]
