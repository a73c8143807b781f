"""The admin view in headless Chromium: sign in with the master key, create a key, fund its user,
use it, block it (then the proxy refuses it with 401), and look at every admin page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.ui.conftest import chat, eventually, screenshot

pytestmark = pytest.mark.slow  # a real browser: make test runs it when CI=true (make test-all always)


async def test_admin_creates_funds_uses_and_blocks_a_key(
    proxy: ProxyServer, admin: httpx.AsyncClient, page: Any
) -> None:
    await page.goto(f"{proxy.url}/ui")
    await page.get_by_role("heading", name="Sign in").wait_for()
    await screenshot(page, "login")

    # A wrong key is refused in words, and nothing is stored.
    await page.get_by_label("API key").fill("sk-not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("alert").filter(has_text="invalid API key").wait_for()

    # Keyboard only: the key field has the focus, Enter signs in.
    await page.get_by_label("API key").fill("")
    await page.keyboard.type(MASTER_KEY)
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="Spend", level=1).wait_for()
    assert "Admin" in await page.locator(".who").inner_text()

    # Keys: create one for a user, with a budget and one model.
    await page.get_by_role("link", name="Keys").click()
    await page.get_by_role("heading", name="Keys", level=1).wait_for()
    await page.get_by_text("No keys yet.").wait_for()
    await page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create a key")
    await dialog.get_by_label("Alias").fill("e2e-key")
    await dialog.get_by_label("User id").fill("e2e-user")
    await dialog.get_by_label("Budget (USD)").fill("5")
    await dialog.get_by_label("gpt-fake").check()
    await dialog.get_by_role("button", name="Create key").click()
    secret_dialog = page.get_by_role("dialog", name="Key e2e-key created")
    raw_key = await secret_dialog.get_by_label("Key").input_value()
    assert raw_key.startswith("sk-")
    await screenshot(page, "admin-key-created")
    await secret_dialog.get_by_role("button", name="Done").click()

    row = page.get_by_role("row").filter(has_text="e2e-key")
    await row.wait_for()
    spend_header = page.get_by_role("columnheader", name="Spend")
    assert await spend_header.get_attribute("aria-sort") == "none"
    await spend_header.get_by_role("button").focus()
    await page.keyboard.press("Enter")
    assert await spend_header.get_attribute("aria-sort") == "descending"
    assert "user e2e-user" in await row.inner_text()
    assert "Active" in await row.inner_text()
    listed = (await admin.get("/key/info", params={"key": raw_key})).json()["info"]
    assert listed["key_alias"] == "e2e-key" and listed["models"] == ["gpt-fake"] and listed["max_budget"] == 5.0

    # Edit its budget and limits.
    await page.get_by_role("button", name="Edit key e2e-key").click()
    dialog = page.get_by_role("dialog", name="Edit key e2e-key")
    assert await dialog.get_by_label("Budget (USD)").input_value() == "5"
    await dialog.get_by_label("Budget (USD)").fill("7.50")
    await dialog.get_by_label("Requests per minute").fill("60")
    await dialog.get_by_role("button", name="Save").click()
    await page.get_by_role("row").filter(has_text="e2e-key").filter(has_text="60 rpm").wait_for()
    edited = (await admin.get("/key/info", params={"key": raw_key})).json()["info"]
    assert edited["max_budget"] == 7.5 and edited["rpm_limit"] == 60 and edited["models"] == ["gpt-fake"]

    # Without credit the prepaid proxy refuses the key; credit it from the Billing page.
    assert (await chat(proxy.url, raw_key)).status_code == 402
    await page.get_by_role("link", name="Billing").click()
    form = page.get_by_role("form", name="Adjust a balance")
    await form.get_by_label("Account id").fill("e2e-user")
    await form.get_by_label("Amount (USD)").fill("10")
    await form.get_by_label("Reason").fill("welcome credit")
    await form.get_by_role("button", name="Apply adjustment").click()
    await page.get_by_text("New balance of user e2e-user: $10.00.").wait_for()
    balance_row = page.get_by_role("row").filter(has_text="e2e-user")
    await balance_row.filter(has_text="$10.00").wait_for()
    served = await chat(proxy.url, raw_key)
    assert served.status_code == 200, served.text

    # Block it: the row says so, and the proxy answers 401 to the key.
    await page.get_by_role("link", name="Keys").click()
    await page.get_by_role("button", name="Block key e2e-key").click()
    await page.get_by_role("row").filter(has_text="e2e-key").filter(has_text="Blocked").wait_for()
    await screenshot(page, "admin-keys")
    refused = await chat(proxy.url, raw_key)
    assert refused.status_code == 401
    assert "blocked" in refused.json()["error"]["message"]

    # The other pages render with data.
    await page.get_by_role("link", name="Users").click()
    await page.get_by_role("row").filter(has_text="e2e-user").wait_for()
    await screenshot(page, "admin-users")

    await page.get_by_role("link", name="Teams").click()
    await page.get_by_role("button", name="Create team").click()
    dialog = page.get_by_role("dialog", name="Create a team")
    await dialog.get_by_label("Team id").fill("e2e-team")
    await dialog.get_by_label("Name").fill("Research")
    await dialog.get_by_label("Budget (USD)").fill("100")
    await dialog.get_by_role("button", name="Create team").click()
    await page.get_by_role("row").filter(has_text="Research").wait_for()
    await page.get_by_role("button", name="Members of team Research").click()
    members = page.get_by_role("dialog", name="Members of Research")
    await members.get_by_label("User id").fill("e2e-user")
    await members.get_by_role("button", name="Add member").click()
    await members.get_by_role("row").filter(has_text="e2e-user").wait_for()
    await members.get_by_role("button", name="Close").click()
    await screenshot(page, "admin-teams")
    team = (await admin.get("/team/info", params={"team_id": "e2e-team"})).json()["team_info"]
    assert team["members_with_roles"] == [{"user_id": "e2e-user", "user_email": None, "role": "user"}]

    await page.get_by_role("link", name="Models").click()
    await page.get_by_role("row").filter(has_text="gpt-fake").first.wait_for()
    assert await page.get_by_text("Probing every deployment").count() == 0
    await screenshot(page, "admin-models")

    async def logged() -> bool:
        logs = (await admin.get("/spend/logs")).json()
        return any(log["status"] == "success" for log in logs)

    await eventually(logged)
    await page.get_by_role("link", name="Spend").click()
    await page.get_by_role("img", name="Spend per day").wait_for()
    await page.get_by_role("img", name="Top keys").wait_for()
    assert "e2e-key" in await page.get_by_role("img", name="Top keys").inner_html()
    margins = page.get_by_role("region", name="Cost, revenue and margin per day and model")
    await margins.get_by_role("row").filter(has_text="gpt-fake").wait_for()
    await screenshot(page, "admin-spend")

    await page.get_by_role("link", name="Billing").click()
    await page.get_by_role("row").filter(has_text="e2e-user").wait_for()
    await screenshot(page, "admin-billing")

    # Sign out: the page is back to the sign-in form and the bridge refuses the browser's cookies.
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("heading", name="Sign in").wait_for()
    answer = await page.evaluate("fetch('/ui/api/key/list').then(r => r.status)")
    assert answer == 401
