"""Admin changes that link billing are one unit of work: a refused change links nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from proxyllm.db.tables import User
from proxyllm.db.tables_billing import BillingAccount
from tests.billing.conftest import FakeStripe
from tests.conftest import ProxyServer, run_in_proxy


async def _billing_rows(proxy: ProxyServer, account_id: str) -> list[tuple[str, str | None]]:
    from sqlalchemy import select

    async def read() -> list[tuple[str, str | None]]:
        async with proxy.runtime.db.session() as session:
            rows = await session.execute(
                select(BillingAccount.account_type, BillingAccount.stripe_customer_id).where(
                    BillingAccount.account_id == account_id
                )
            )
            return [(kind, customer) for kind, customer in rows.all()]

    result: list[tuple[str, str | None]] = await asyncio.to_thread(run_in_proxy, proxy, read())
    return result


async def _user_row(proxy: ProxyServer, user_id: str) -> Any:
    async def read() -> Any:
        async with proxy.runtime.db.session() as session:
            return await session.get(User, user_id)

    return await asyncio.to_thread(run_in_proxy, proxy, read())


async def test_user_new_for_an_existing_user_relinks_nothing(
    proxy: ProxyServer, admin: httpx.AsyncClient, stripe_api: FakeStripe
) -> None:
    stripe_api.known_customers.add("cus_other")
    first = await admin.post("/user/new", json={"user_id": "ann", "stripe_customer_id": "cus_linked"})
    assert first.status_code == 200, first.text
    assert await _billing_rows(proxy, "ann") == [("user", "cus_linked")]

    again = await admin.post("/user/new", json={"user_id": "ann", "stripe_customer_id": "cus_other"})
    assert again.status_code == 400 and again.json()["error"]["param"] == "user_id", again.text
    assert await _billing_rows(proxy, "ann") == [("user", "cus_linked")]  # not re-linked
    assert (await _user_row(proxy, "ann")).stripe_customer_id == "cus_linked"
    logs = (await admin.get("/audit/logs", params={"target_id": "ann"})).json()["data"]
    assert [row["action"] for row in logs] == ["user.new"]


async def test_user_update_of_a_missing_user_creates_no_billing_account(
    proxy: ProxyServer, admin: httpx.AsyncClient
) -> None:
    missing = await admin.post("/user/update", json={"user_id": "ghost", "stripe_customer_id": "cus_linked"})
    assert missing.status_code == 404, missing.text
    assert await _billing_rows(proxy, "ghost") == []
    assert await _user_row(proxy, "ghost") is None
    assert (await admin.get("/audit/logs", params={"target_id": "ghost"})).json()["data"] == []


async def test_an_unknown_stripe_customer_leaves_no_user_behind(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    refused = await admin.post("/user/new", json={"user_id": "bea", "stripe_customer_id": "cus_nobody"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "stripe_customer_id", refused.text
    assert await _user_row(proxy, "bea") is None and await _billing_rows(proxy, "bea") == []
    created = await admin.post("/user/new", json={"user_id": "bea", "stripe_customer_id": "cus_linked"})
    assert created.status_code == 200, created.text
    assert await _billing_rows(proxy, "bea") == [("user", "cus_linked")]


async def test_team_links_are_in_the_same_unit(proxy: ProxyServer, admin: httpx.AsyncClient) -> None:
    missing = await admin.post("/team/update", json={"team_id": "none", "stripe_customer_id": "cus_linked"})
    assert missing.status_code == 404
    assert await _billing_rows(proxy, "none") == []
    created = await admin.post("/team/new", json={"team_id": "t1", "stripe_customer_id": "cus_linked"})
    assert created.status_code == 200, created.text
    assert created.json()["stripe_customer_id"] == "cus_linked"
    assert await _billing_rows(proxy, "t1") == [("team", "cus_linked")]
