"""The customer view in headless Chromium: sign in with a virtual key, top up through (fake) Stripe
Checkout on another site, come back when the signed webhook has credited the balance, see the ledger
entry and the usage; cancel a second top-up; the layout holds at phone width."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import ProxyServer
from tests.fakes.stripe_upstream import FakeStripeUpstream
from tests.ui.conftest import chat, eventually, screenshot, sign_in

pytestmark = pytest.mark.slow  # a real browser: make test runs it when CI=true (make test-all always)


async def make_customer(admin: httpx.AsyncClient, user_id: str, alias: str) -> str:
    created = await admin.post("/user/new", json={"user_id": user_id, "auto_create_key": False})
    assert created.status_code == 200, created.text
    key = await admin.post("/key/generate", json={"user_id": user_id, "key_alias": alias})
    assert key.status_code == 200, key.text
    return str(key.json()["key"])


async def test_customer_tops_up_and_sees_balance_ledger_and_usage(
    proxy: ProxyServer, admin: httpx.AsyncClient, stripe_upstream: FakeStripeUpstream, page: Any
) -> None:
    key = await make_customer(admin, "cust-1", "cust-key")
    other = await make_customer(admin, "cust-2", "other-secret-alias")
    funded = await admin.post(
        "/stripe/balance/adjust", json={"account_id": "cust-2", "amount": "777.77", "reason": "other account"}
    )
    assert funded.status_code == 200
    assert (await chat(proxy.url, other)).status_code == 200

    await sign_in(page, proxy.url, key)
    await page.get_by_role("heading", name="Usage", level=1).wait_for()
    assert "cust-key" in await page.locator(".who").inner_text()
    await page.get_by_text("Your balance is low").wait_for()
    await screenshot(page, "customer-usage-empty")

    # Top up $25: Stripe Checkout (another site), pay, back to the success page.
    await page.get_by_role("link", name="Billing").click()
    await page.get_by_role("heading", name="Transactions").wait_for()
    await page.get_by_text("No transactions yet.").wait_for()
    await page.get_by_label("Amount (USD)").fill("25")
    await page.get_by_role("button", name="Continue to payment").click()
    await page.wait_for_url(re.compile(r"http://localhost:\d+/c/pay/cs_test_\w+"))
    await page.get_by_role("heading", name="Fake Stripe Checkout").wait_for()
    await screenshot(page, "stripe-checkout")
    session = next(iter(reversed(stripe_upstream.sessions.values())))
    assert session["amount_total"] == 2500 and session["metadata"]["proxyllm_account_id"] == "cust-1"
    assert session["success_url"] == f"{proxy.url}/ui/billing/success?session_id={{CHECKOUT_SESSION_ID}}"

    await page.get_by_role("button", name="Pay 25.00 USD").click()
    await page.wait_for_url(f"{proxy.url}/ui/billing/success?session_id={session['id']}")
    assert stripe_upstream.deliveries[-1][0] == 200
    await page.get_by_text("Payment received: $25.00 was added to your balance.").wait_for()
    await page.locator(".stat").filter(has_text="Balance").filter(has_text="$25.00").wait_for()
    await screenshot(page, "customer-billing-success")

    await page.get_by_role("link", name="Back to billing").click()
    ledger_row = page.get_by_role("row").filter(has_text="Top-up")
    await ledger_row.wait_for()
    assert "+$25.00" in await ledger_row.inner_text()
    assert "Your balance is low" not in await page.locator("main").inner_text()
    await screenshot(page, "customer-billing")

    # Use the credit; the usage page shows it per day and per model.
    assert (await chat(proxy.url, key)).status_code == 200

    async def logged() -> bool:
        return bool((await admin.get("/spend/logs", params={"api_key": key})).json())

    await eventually(logged)
    await page.get_by_role("link", name="Usage").click()
    await page.get_by_role("img", name="Spend per day, by model").wait_for()
    assert "gpt-fake" in await page.get_by_role("region", name="Usage per model").inner_text()
    await screenshot(page, "customer-usage")

    # Phone width: nothing but the tables' own scroll areas is wider than the screen.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.reload()
    await page.get_by_role("img", name="Spend per day, by model").wait_for()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await screenshot(page, "customer-usage-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.emulate_media(color_scheme="dark")
    await page.get_by_role("img", name="Spend per day, by model").wait_for()
    await screenshot(page, "customer-usage-dark")
    await page.emulate_media(color_scheme="light")

    # A cancelled top-up charges nothing and says so.
    await page.get_by_role("link", name="Billing").click()
    await page.get_by_label("Amount (USD)").fill("10")
    await page.get_by_role("button", name="Continue to payment").click()
    await page.get_by_role("heading", name="Fake Stripe Checkout").wait_for()
    await page.get_by_role("link", name="Cancel and go back").click()
    await page.wait_for_url(f"{proxy.url}/ui/billing/cancel")
    await page.get_by_role("heading", name="Top-up cancelled").wait_for()
    await page.locator(".stat").filter(has_text="Topped up").filter(has_text="$25.00").wait_for()
    await screenshot(page, "customer-billing-cancel")

    # Nothing of the other customer, and never the key itself, reached the page.
    for path in ("/ui/usage", "/ui/billing"):
        await page.goto(f"{proxy.url}{path}")
        await page.get_by_role("button", name="Sign out").wait_for()
        await page.wait_for_load_state("networkidle")
        content = await page.content()
        assert "cust-2" not in content and "other-secret-alias" not in content and "777.77" not in content
        assert key not in content
    assert key not in await page.evaluate("document.cookie + JSON.stringify(localStorage) + location.href")
