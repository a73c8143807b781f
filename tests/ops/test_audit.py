"""The audit log: a row for every admin action, in the transaction of the change, with secrets masked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from proxyllm.core.context import Principal
from proxyllm.db.tables_ops import AuditLog
from proxyllm.ops.audit import actor_of, changes
from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ops.conftest import UPSTREAM_SECRET, db_rows, new_model_body, ops_config, start

CLIENT = "203.0.113.77"  # the client as the trusted proxy (127.0.0.1 here) reports it


@pytest.fixture
async def proxy(database_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI) -> ProxyServer:
    text = ops_config(openai_upstream, general={"trusted_proxies": ["127.0.0.1"]})
    return await start(proxy_factory, text, database_url)


def client(proxy: ProxyServer) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {MASTER_KEY}", "x-forwarded-for": CLIENT}
    # a new connection per request: after an unexpected error (a 500) the server closes the connection
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=proxy.url, timeout=30, headers=headers, limits=limits)


async def ok(c: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await c.post(path, json=body)
    assert resp.status_code == 200, f"{path}: {resp.text}"
    data: dict[str, Any] = resp.json()
    return data


async def logs(c: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await c.get("/audit/logs", params=params)
    assert resp.status_code == 200, resp.text
    data: list[dict[str, Any]] = resp.json()["data"]
    return data


async def test_every_admin_action_is_recorded(proxy: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    async with client(proxy) as c:
        await ok(c, "/team/new", {"team_id": "t1", "team_alias": "Team One"})
        await ok(c, "/team/update", {"team_id": "t1", "max_budget": 25})
        await ok(c, "/team/member_add", {"team_id": "t1", "member": {"user_id": "u9"}})
        await ok(c, "/team/member_delete", {"team_id": "t1", "user_id": "u9"})
        user = await ok(c, "/user/new", {"user_id": "u1", "user_email": "u1@example.com"})
        await ok(c, "/user/update", {"user_id": "u1", "user_alias": "Una"})
        key = await ok(c, "/key/generate", {"key_alias": "app", "team_id": "t1"})
        token = key["token"]
        await ok(c, "/key/update", {"key": token, "max_budget": 5, "metadata": {"api_key": "sk-meta-secret-123456"}})
        await ok(c, "/key/block", {"key": token})
        await ok(c, "/key/unblock", {"key": token})
        regenerated = await ok(c, "/key/regenerate", {"key": token})
        await ok(c, "/key/delete", {"keys": [regenerated["token"]]})
        model = await ok(c, "/model/new", new_model_body(openai_upstream))
        await ok(c, "/model/update", {"id": model["model_id"], "litellm_params": {"api_key": "sk-rotated-secret-42"}})
        await ok(c, "/model/delete", {"id": model["model_id"]})
        await ok(c, "/user/delete", {"user_ids": ["u1"]})
        await ok(c, "/team/delete", {"team_ids": ["t1"]})

        rows = await logs(c)
    expected = [
        ("team.new", "t1"),
        ("team.update", "t1"),
        ("team.member_add", "t1"),
        ("team.member_delete", "t1"),
        ("user.new", "u1"),
        ("user.update", "u1"),
        ("key.generate", token),
        ("key.update", token),
        ("key.block", token),
        ("key.unblock", token),
        ("key.regenerate", token),
        ("key.delete", regenerated["token"]),
        ("model.new", model["model_id"]),
        ("model.update", model["model_id"]),
        ("model.delete", model["model_id"]),
        ("user.delete", "u1"),
        ("team.delete", "t1"),
    ]
    assert [(r["action"], r["target_id"]) for r in reversed(rows)] == expected  # newest first
    assert {r["actor"] for r in rows} == {"master"}
    assert {r["client_ip"] for r in rows} == {CLIENT}
    assert all(r["target_type"] == r["action"].partition(".")[0] for r in rows)
    by_action = {r["action"]: r for r in rows}

    # an update keeps only what changed, before and after
    assert by_action["team.update"]["before"] == {"max_budget": None}
    assert by_action["team.update"]["after"] == {"max_budget": 25.0}
    assert by_action["user.update"]["after"] == {"user_alias": "Una"}
    assert by_action["key.block"]["before"] == {"blocked": False} and by_action["key.block"]["after"] == {
        "blocked": True
    }
    assert by_action["team.member_add"]["after"]["members_with_roles"] == [
        {"user_id": "u9", "user_email": None, "role": "user"}
    ]
    # creations and deletions keep the whole object
    assert by_action["key.generate"]["after"]["key_alias"] == "app" and by_action["key.generate"]["before"] is None
    assert by_action["user.delete"]["before"]["user_email"] == "u1@example.com"
    assert by_action["user.delete"]["after"] is None
    assert by_action["key.regenerate"]["after"]["token"] == regenerated["token"]

    # secrets are masked, whatever object they sit in
    key_update = by_action["key.update"]
    assert key_update["after"]["metadata"] == {"api_key": "sk-****56"}
    assert by_action["model.new"]["after"]["litellm_params.api_key"] == "sk-****9c"
    assert by_action["model.update"]["before"] == {"litellm_params.api_key": "sk-****9c"}
    assert by_action["model.update"]["after"] == {"litellm_params.api_key": "sk-****42"}
    stored = await db_rows(proxy, AuditLog.__table__)
    text = str(stored)
    for secret in (UPSTREAM_SECRET, "sk-rotated-secret-42", "sk-meta-secret-123456", key["key"], regenerated["key"]):
        assert secret not in text
    assert user["key"] not in text


async def test_filters(proxy: ProxyServer) -> None:
    async with client(proxy) as c:
        for i in range(3):
            await ok(c, "/team/new", {"team_id": f"f{i}"})
        key = await ok(c, "/key/generate", {})
        await ok(c, "/key/block", {"key": key["token"]})
        assert len(await logs(c)) == 5
        assert [r["target_id"] for r in await logs(c, action="team.new")] == ["f2", "f1", "f0"]
        assert len(await logs(c, action="key.*")) == 2 and len(await logs(c, action="key.")) == 2
        assert len(await logs(c, target_type="team")) == 3
        assert [r["action"] for r in await logs(c, target_id=key["token"])] == ["key.block", "key.generate"]
        assert len(await logs(c, actor="master")) == 5 and await logs(c, actor="someone") == []
        assert len(await logs(c, client_ip=CLIENT)) == 5 and await logs(c, client_ip="10.0.0.1") == []
        today = datetime.now(UTC).date()
        assert len(await logs(c, start_date=today.isoformat(), end_date=today.isoformat())) == 5
        assert await logs(c, start_date=(today + timedelta(days=1)).isoformat()) == []
        page = (await c.get("/audit/logs", params={"page": 2, "page_size": 2})).json()
        assert (
            page["total"] == 5
            and page["total_pages"] == 3
            and [r["target_id"] for r in page["data"]]
            == [
                "f2",
                "f1",
            ]
        )
        assert (await c.get("/audit/logs", params={"start_date": "yesterday"})).status_code == 400
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key['key']}"}) as as_key:
        assert (await as_key.get("/audit/logs")).status_code == 401  # the key is blocked
    async with httpx.AsyncClient(base_url=proxy.url) as anonymous:
        assert (await anonymous.get("/audit/logs")).status_code == 401


@pytest.fixture
def fail_commit_of() -> Iterator[set[str]]:
    """Make the commit of any transaction carrying an audit row for one of these actions fail."""
    actions: set[str] = set()

    def note(session: Session, *_: Any) -> None:
        if any(isinstance(obj, AuditLog) and obj.action in actions for obj in session.new):
            session.info["fail_commit"] = True

    def boom(session: Session) -> None:
        note(session)
        if session.info.pop("fail_commit", False):
            raise RuntimeError("injected failure at commit")

    event.listen(Session, "before_flush", note)
    event.listen(Session, "before_commit", boom)
    yield actions
    event.remove(Session, "before_commit", boom)
    event.remove(Session, "before_flush", note)


async def test_a_failed_change_leaves_no_audit_row(
    proxy: ProxyServer, openai_upstream: FakeOpenAI, fail_commit_of: set[str]
) -> None:
    async with client(proxy) as c:
        await ok(c, "/team/new", {"team_id": "keep"})
        key = await ok(c, "/key/generate", {"key_alias": "stays"})
        before = len(await logs(c))

        # refused before anything changed
        assert (await c.post("/team/delete", json={"team_ids": ["keep", "missing"]})).status_code == 404
        assert (await c.post("/key/update", json={"key": key["token"], "team_id": "missing"})).status_code == 400
        assert (await c.post("/key/generate", json={"key_alias": "stays"})).status_code == 400
        # the change and its audit row were both written, then the commit failed
        fail_commit_of.update({"key.update", "model.new", "team.delete"})
        assert (await c.post("/key/update", json={"key": key["token"], "max_budget": 1})).status_code == 500
        assert (await c.post("/team/delete", json={"team_ids": ["keep"]})).status_code == 500
        assert (await c.post("/model/new", json=new_model_body(openai_upstream))).status_code == 500

        assert len(await logs(c)) == before
        info = (await c.get("/key/info", params={"key": key["token"]})).json()["info"]
        assert info["max_budget"] is None
        assert (await c.get("/team/info", params={"team_id": "keep"})).status_code == 200
    assert proxy.runtime.router.find("db-model") is None
    assert len(await db_rows(proxy, AuditLog.__table__)) == before


def test_actor_names_and_changes() -> None:
    assert actor_of(Principal("master", is_admin=True)) == ("master", None)
    assert actor_of(Principal("open", is_admin=True)) == ("open", None)
    assert actor_of(Principal("key", key_hash="ab" * 32, key_alias="ops-bot")) == ("ops-bot", "ab" * 32)
    assert actor_of(Principal("key", key_hash="cd" * 32)) == ("key:" + "cd" * 6, "cd" * 32)
    assert actor_of("stripe-webhook") == ("stripe-webhook", None)
    from decimal import Decimal

    old, new = changes({"a": 1, "b": Decimal("1.10"), "c": "x"}, {"a": 1, "b": Decimal("2.25"), "d": True})
    assert old == {"b": "1.10", "c": "x", "d": None} and new == {"b": "2.25", "c": None, "d": True}
