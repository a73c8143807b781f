"""The customer billing page's self-service in headless Chromium: save a card through (fake) Stripe
Checkout in setup mode, turn automatic recharge on, see promotional credits, open the Stripe Billing Portal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ProxyServer
from tests.fakes.stripe_upstream import FakeStripeUpstream
from tests.ui.conftest import eventually, screenshot, sign_in
from tests.ui.test_e2e_customer import make_customer

pytestmark = pytest.mark.slow  # a real browser: make test runs it when CI=true (make test-all always)


async def test_customer_saves_a_card_sets_auto_recharge_sees_grants_and_opens_the_portal(
    proxy: ProxyServer, admin: httpx.AsyncClient, stripe_upstream: FakeStripeUpstream, page: Any
) -> None:
    key = await make_customer(admin, "self-1", "self-key")
    await admin.post("/stripe/balance/adjust", json={"account_id": "self-1", "amount": "10", "reason": "paid"})
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    granted = await admin.post(
        "/stripe/grants",
        json={
            "account_id": "self-1",
            "amount": "5",
            "priority": 2,
            "expires_at": expires,
            "description": "Welcome bonus",
        },
    )
    assert granted.status_code == 200, granted.text

    await sign_in(page, proxy.url, key)
    await page.get_by_role("link", name="Billing").click()
    await page.get_by_role("heading", name="Automatic recharge").wait_for()
    await page.get_by_text("No card saved yet").wait_for()
    grants = page.get_by_role("region", name="Promotional credits", exact=True).last
    await grants.get_by_role("row").filter(has_text="Welcome bonus").wait_for()
    assert "$5.00" in await grants.inner_text()

    # Turning it on without a card is refused with the API's reason.
    await page.get_by_label("Recharge automatically").check()
    await page.get_by_label("When the balance falls under (USD)").fill("5")
    await page.get_by_label("Add (USD)").fill("20")
    await page.get_by_label("At most per month (USD)").fill("60")
    await page.get_by_role("button", name="Save recharge settings").click()
    await page.get_by_text("save a card first").wait_for()

    # Save a card: Stripe Checkout in setup mode (another site), back to billing once the webhook stored it.
    await page.get_by_role("button", name="Save a card").click()
    await page.wait_for_url(re.compile(r"http://localhost:\d+/c/pay/cs_test_\w+"))
    session = next(iter(reversed(stripe_upstream.sessions.values())))
    assert session["mode"] == "setup" and session["setup_metadata"]["proxyllm_account_id"] == "self-1"
    await page.get_by_role("button", name="Save card").click()
    await page.wait_for_url(f"{proxy.url}/ui/billing")
    await page.get_by_text("Card saved").wait_for()

    await page.get_by_label("Recharge automatically").check()
    await page.get_by_label("When the balance falls under (USD)").fill("5")
    await page.get_by_label("Add (USD)").fill("20")
    await page.get_by_label("At most per month (USD)").fill("60")
    await page.get_by_role("button", name="Save recharge settings").click()
    await page.get_by_text("Automatic recharge is on: $20.00 when your balance falls under $5.00").wait_for()

    async def stored() -> bool:
        state = (await admin.get("/stripe/auto_recharge", params={"account_id": "self-1"})).json()
        return bool(state["enabled"] and state["amount"] == 20 and state["monthly_cap"] == 60)

    await eventually(stored)
    await screenshot(page, "customer-billing-selfservice")

    # The Stripe Billing Portal, and back.
    await page.get_by_role("button", name="Manage billing on Stripe").click()
    await page.wait_for_url(re.compile(r"http://localhost:\d+/p/session/bps_\w+"))
    await page.get_by_role("heading", name="Fake Stripe Billing Portal").wait_for()
    portal = next(iter(reversed(stripe_upstream.portal_sessions.values())))
    assert portal["return_url"] == f"{proxy.url}/ui/billing"
    await page.get_by_role("link", name="Return to the proxy").click()
    await page.wait_for_url(f"{proxy.url}/ui/billing")
    await page.get_by_role("heading", name="Automatic recharge").wait_for()
