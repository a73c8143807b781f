"""Roles and ownership, route by route: each role's access to each admin route (admin/permissions.py)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from proxyllm.accounts.keys import hash_key
from proxyllm.admin.permissions import ADMIN_READ, ADMIN_WRITE, EVERY_KEY_READ, Role, rule_for
from tests.accounts.conftest import new_key
from tests.conftest import MASTER_KEY, ProxyServer

ROLES = ["master", "padmin", "viewer", "alice", "bob", "vic", "lone"]
# master: the master key; padmin: a proxy_admin user's key; viewer: proxy_admin_viewer; alice: an
# internal_user, admin of team t-a; bob: an internal_user, plain member of t-a; vic: internal_user_viewer
# (in no team); lone: a key of team t-a that belongs to no user.
OK, NO = 200, 403


def row(master: int, padmin: int, viewer: int, alice: int, bob: int, vic: int, lone: int) -> dict[str, int]:
    return dict(zip(ROLES, (master, padmin, viewer, alice, bob, vic, lone), strict=True))


ADMINS = row(OK, OK, NO, NO, NO, NO, NO)
READERS = row(OK, OK, OK, NO, NO, NO, NO)

# (method, path, payload, expected status per role). Payload placeholders: {self} the caller's key
# (alice's for the master key), {me} the caller's user, {fresh:X} a new key of X ("self", "carol",
# "team": bob's key in t-a), {new} a new id, {doomed_user} / {doomed_team} a user / team made for this
# test to delete (the role tests share one proxy and its users, teams and keys).
CASES: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
    ("GET", "/key/info", {"key": "{self}"}, row(OK, OK, OK, OK, OK, OK, OK)),
    ("GET", "/key/info", {}, row(400, OK, OK, OK, OK, OK, OK)),
    ("GET", "/key/info", {"key": "{fresh:carol}"}, READERS),
    ("GET", "/key/info", {"key": "{fresh:team}"}, row(OK, OK, OK, OK, OK, NO, NO)),
    ("GET", "/key/info", {"key": "sk-no-such-key"}, row(404, 404, 404, 404, 404, 404, 404)),
    ("GET", "/key/list", {}, READERS),
    ("POST", "/key/generate", {}, row(OK, OK, NO, OK, OK, NO, NO)),
    ("POST", "/key/generate", {"user_id": "carol"}, ADMINS),
    ("POST", "/key/generate", {"team_id": "t-a"}, row(OK, OK, NO, OK, OK, NO, NO)),
    ("POST", "/key/generate", {"team_id": "t-b"}, ADMINS),
    ("POST", "/key/generate", {"team_id": "t-a", "user_id": "padmin"}, ADMINS),  # no admin key for a team admin
    ("POST", "/key/update", {"key": "{fresh:self}", "max_budget": 5}, row(OK, OK, NO, OK, OK, NO, NO)),
    ("POST", "/key/update", {"key": "{fresh:carol}", "max_budget": 5}, ADMINS),
    ("POST", "/key/update", {"key": "{fresh:self}", "user_id": "carol"}, ADMINS),
    ("POST", "/key/update", {"key": "{fresh:self}", "team_id": "t-b"}, ADMINS),
    ("POST", "/key/update", {"key": "{fresh:team}", "user_id": "padmin"}, ADMINS),
    ("POST", "/key/update", {"key": "{fresh:self}", "blocked": False}, ADMINS),
    ("POST", "/key/update", {"key": "{fresh:team}", "max_budget": 1}, row(OK, OK, NO, OK, OK, NO, NO)),
    ("POST", "/key/delete", {"keys": ["{fresh:self}"]}, row(OK, OK, NO, OK, OK, NO, NO)),
    ("POST", "/key/delete", {"keys": ["{fresh:team}"]}, row(OK, OK, NO, OK, OK, NO, NO)),
    ("POST", "/key/delete", {"keys": ["{fresh:carol}"]}, ADMINS),
    ("POST", "/key/regenerate", {"key": "{fresh:self}"}, row(OK, OK, NO, OK, OK, NO, NO)),
    ("POST", "/key/regenerate", {"key": "{fresh:carol}"}, ADMINS),
    ("POST", "/key/regenerate", {"key": "{fresh:team}"}, row(OK, OK, NO, NO, OK, NO, NO)),  # bob's, in alice's team
    ("POST", "/key/block", {"key": "{fresh:self}"}, ADMINS),
    ("POST", "/key/unblock", {"key": "{fresh:self}"}, ADMINS),
    ("GET", "/user/info", {"user_id": "{me}"}, row(OK, OK, OK, OK, OK, OK, NO)),
    ("GET", "/user/info", {"user_id": "carol"}, READERS),
    ("GET", "/user/list", {}, READERS),
    ("POST", "/user/new", {"user_id": "{new}"}, ADMINS),
    ("POST", "/user/update", {"user_id": "{me}", "max_budget": 100}, ADMINS),
    ("POST", "/user/delete", {"user_ids": ["{doomed_user}"]}, ADMINS),
    ("GET", "/team/info", {"team_id": "t-a"}, row(OK, OK, OK, OK, OK, NO, OK)),
    ("GET", "/team/info", {"team_id": "t-b"}, READERS),
    ("GET", "/team/list", {}, READERS),
    ("POST", "/team/new", {"team_id": "{new}"}, ADMINS),
    ("POST", "/team/update", {"team_id": "t-a", "team_alias": "A"}, row(OK, OK, NO, OK, NO, NO, NO)),
    ("POST", "/team/update", {"team_id": "t-a", "max_budget": 1000}, ADMINS),
    ("POST", "/team/update", {"team_id": "t-b", "team_alias": "B"}, ADMINS),
    ("POST", "/team/member_add", {"team_id": "t-a", "member": {"user_id": "{new}"}}, row(OK, OK, NO, OK, NO, NO, NO)),
    ("POST", "/team/member_add", {"team_id": "t-b", "member": {"user_id": "{new}"}}, ADMINS),
    (
        "POST",
        "/team/member_update",
        {"team_id": "t-a", "user_id": "dan", "role": "user"},
        row(OK, OK, NO, OK, NO, NO, NO),
    ),
    ("POST", "/team/delete", {"team_ids": ["{doomed_team}"]}, ADMINS),
    ("GET", "/audit/logs", {}, READERS),
    ("GET", "/global/spend", {}, READERS),
    ("GET", "/health", {}, READERS),
]


@pytest.fixture(scope="module")
async def world(shared_admin: httpx.AsyncClient) -> dict[str, Any]:
    """The users, teams and keys of the table, made once per module with the master key. No case changes
    anyone's role or team membership (deletions take a user and team made for the test)."""
    for user_id, role in [
        ("padmin", "proxy_admin"),
        ("viewer", "proxy_admin_viewer"),
        ("alice", "internal_user"),
        ("bob", "internal_user"),
        ("vic", "internal_user_viewer"),
        ("carol", "internal_user"),
        ("dan", "internal_user"),
    ]:
        made = await shared_admin.post(
            "/user/new", json={"user_id": user_id, "user_role": role, "auto_create_key": False}
        )
        assert made.status_code == 200, made.text
    members = [{"user_id": "alice", "role": "admin"}, {"user_id": "bob"}, {"user_id": "dan"}]
    for team, with_members in (("t-a", members), ("t-b", [])):
        made = await shared_admin.post("/team/new", json={"team_id": team, "members_with_roles": with_members})
        assert made.status_code == 200, made.text
    keys = {
        user: (await new_key(shared_admin, user_id=user))["key"] for user in ("padmin", "viewer", "alice", "bob", "vic")
    }
    keys["lone"] = (await new_key(shared_admin, team_id="t-a"))["key"]
    keys["master"] = MASTER_KEY
    return keys


def _fill(value: Any, fill: dict[str, str]) -> Any:
    if isinstance(value, str):
        return fill.get(value, value)
    if isinstance(value, list):
        return [_fill(v, fill) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, fill) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_route_by_route(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, world: dict[str, Any], role: str
) -> None:
    admin, keys = shared_admin, world
    me = {"master": "alice", "lone": "nobody"}.get(role, role)
    doomed_user, doomed_team = f"carol-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    made = await admin.post("/user/new", json={"user_id": doomed_user, "auto_create_key": False})
    assert made.status_code == 200, made.text
    assert (await admin.post("/team/new", json={"team_id": doomed_team})).status_code == 200

    async def fresh(placeholder: str) -> str:
        if placeholder == "{fresh:self}":
            lone = role == "lone"
            made = await new_key(admin, user_id=None if lone else me, team_id="t-a" if lone else None)
        elif placeholder == "{fresh:carol}":
            made = await new_key(admin, user_id="carol")
        else:
            made = await new_key(admin, user_id="bob", team_id="t-a")
        return str(made["key"])

    mismatches = []
    async with httpx.AsyncClient(
        base_url=shared_proxy.url, timeout=30, headers={"authorization": f"Bearer {keys[role]}"}
    ) as caller:
        for method, path, payload, expected in CASES:
            fill = {
                "{self}": keys["alice" if role == "master" else role],
                "{me}": me,
                "{new}": f"n-{uuid.uuid4().hex[:8]}",
                "{doomed_user}": doomed_user,
                "{doomed_team}": doomed_team,
            }
            # Only the fresh keys this case names (making all three for every case was most of the time).
            for placeholder in ("{fresh:self}", "{fresh:carol}", "{fresh:team}"):
                if placeholder in repr(payload):
                    fill[placeholder] = await fresh(placeholder)
            body = _fill(payload, fill)
            if method == "GET":
                answer = await caller.get(path, params=body)
            else:
                answer = await caller.post(path, json=body)
            want = expected[role]
            if answer.status_code != want:
                mismatches.append((method, path, payload, want, answer.status_code, answer.text[:300]))
            elif want == NO:
                error = answer.json()["error"]
                assert error["type"] == "permission_error" and "may not call" in error["message"], error
    assert not mismatches, "\n".join(map(str, mismatches))


async def test_no_key_is_401_and_a_bad_key_is_401(proxy: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as anonymous:
        for number, (method, path, payload, _) in enumerate(CASES):
            # a few bad keys only: repeated failures are throttled (429) by design
            for headers in ({}, {"authorization": "Bearer sk-not-a-key"}) if number < 5 else ({},):
                answer = await anonymous.request(
                    method, path, headers=headers, **({"params": {}} if method == "GET" else {"json": payload})
                )
                assert answer.status_code == 401, (method, path, headers, answer.text)
                assert answer.json()["error"]["type"] == "authentication_error"


async def test_a_role_change_applies_at_once_and_403_says_why(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient
) -> None:
    """On the shared proxy: eve and zed are this test's own users."""
    proxy, admin = shared_proxy, shared_admin
    await admin.post("/user/new", json={"user_id": "eve", "auto_create_key": False})
    key = (await new_key(admin, user_id="eve"))["key"]
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {key}"}) as eve:
        refused = await eve.post("/user/new", json={"user_id": "zed"})
        assert refused.status_code == 403
        message = refused.json()["error"]["message"]
        assert "user 'eve' (role internal_user)" in message and "POST /user/new" in message, message
        assert key not in refused.text
        assert (
            await admin.post("/user/update", json={"user_id": "eve", "user_role": "proxy_admin"})
        ).status_code == 200
        made = await eve.post("/user/new", json={"user_id": "zed", "auto_create_key": False})
        assert made.status_code == 200, made.text
        logs = (await admin.get("/audit/logs", params={"action": "user.new", "target_id": "zed"})).json()["data"]
        assert logs[0]["actor_key_hash"] == hash_key(key)  # the audit row names the admin key that acted
        assert (
            await admin.post("/user/update", json={"user_id": "eve", "user_role": "proxy_admin_viewer"})
        ).status_code == 200
        assert (await eve.get("/user/list")).status_code == 200
        assert (await eve.post("/user/new", json={"user_id": "zed-2"})).status_code == 403


def test_the_table_covers_the_routes_added_elsewhere() -> None:
    """Routes served by other modules get the table's rule by path."""
    for method, path in [
        ("GET", "/budget/info"),
        ("GET", "/budget/list"),
        ("GET", "/end_user/info"),
        ("GET", "/customer/info"),
        ("GET", "/routes"),
        ("GET", "/global/spend/teams"),
        ("GET", "/global/spend/report"),
        ("GET", "/spend/logs"),
    ]:
        assert rule_for(method, path) is ADMIN_READ, (method, path)
    for method, path in [("POST", "/budget/new"), ("POST", "/end_user/new"), ("POST", "/customer/delete")]:
        assert rule_for(method, path) is ADMIN_WRITE, (method, path)
    for path in ("/model/info", "/v2/model/info", "/model_group/info"):
        rule = rule_for("GET", path)
        assert rule is EVERY_KEY_READ and set(rule) == set(Role), path
    assert rule_for("POST", "/some/new/admin/route") is ADMIN_WRITE
    assert rule_for("GET", "/some/new/admin/route") is ADMIN_READ
