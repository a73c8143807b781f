"""Dashboard tests: a proxy with prepaid billing against a fake Stripe on 127.0.0.1, and headless Chromium.

The browser is Debian's ``chromium`` driven by Playwright with an explicit executable path (Playwright's
own browser downloads are never used). Without it the browser tests skip locally and fail when
PROXYLLM_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ProxyServer, service_missing, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.stripe_upstream import FakeStripeUpstream
from tests.helpers import eventually  # noqa: F401  (re-exported for the tests here)

CHROMIUM = os.environ.get("PROXYLLM_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = os.path.isfile(CHROMIUM)
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
WEBHOOK_SECRET = "whsec_ui_test_secret"


def billing_env(stripe: FakeStripeUpstream, database_url: str) -> dict[str, str]:
    return {
        "STRIPE_API_KEY": "sk_test_ui_not_a_real_key",
        "STRIPE_USE_PREPAID_BALANCE": "true",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe.url,
        "STRIPE_DEFAULT_MAX_TOKENS": "100",
        "DATABASE_URL": database_url,
    }


@pytest.fixture(scope="session")
async def stripe_upstream() -> AsyncIterator[FakeStripeUpstream]:
    fake = FakeStripeUpstream(WEBHOOK_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def proxy(
    database_url: str,
    stripe_upstream: FakeStripeUpstream,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> ProxyServer:
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env=billing_env(stripe_upstream, database_url))
    stripe_upstream.webhook_url = f"{server.url}/stripe/webhook"
    return server


@pytest.fixture(scope="module")
async def shared_proxy(
    module_database_url: str,
    stripe_upstream: FakeStripeUpstream,
    module_proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> ProxyServer:
    """``proxy``, shared by the tests of one module (SQLite and PostgreSQL): for tests whose users, keys and
    sessions are their own and that assert nothing about anyone else's (tests/conftest.py,
    module_proxy_factory). Stripe's webhooks go to it until another proxy starts."""
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory, config, env=billing_env(stripe_upstream, module_database_url)
    )
    stripe_upstream.webhook_url = f"{server.url}/stripe/webhook"
    return server


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        service_missing(f"Chromium at {CHROMIUM} (Debian package 'chromium')")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        service_missing("the 'playwright' Python package (pip install -e '.[dev]')")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield chromium
        await chromium.close()


class PageErrors(list[str]):
    """Uncaught script errors of a page: a dashboard page must never throw."""


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    tab = await context.new_page()
    errors = PageErrors()
    tab.on("pageerror", lambda error: errors.append(str(error)))

    def console(message: Any) -> None:  # CSP refusals are reported on the console, not thrown
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append(message.text)

    tab.on("console", console)
    tab.errors = errors
    yield tab
    await context.close()
    assert not errors, f"script errors in the dashboard: {errors}"


UNLABELLED = """() => {
  const named = (el) => (el.labels && el.labels.length)
    || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
  const fields = [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
    .filter((el) => !named(el));
  const buttons = [...document.querySelectorAll("button, a[href]")]
    .filter((el) => !(el.textContent.trim() || el.getAttribute("aria-label")));
  const images = [...document.querySelectorAll(
    "img:not([alt]), svg[role=img]:not([aria-labelledby]):not([aria-label])")];
  return [...fields, ...buttons, ...images].map((el) => el.outerHTML.slice(0, 120));
}"""


async def screenshot(tab: Any, name: str) -> Path:
    """Saves the page under test-artifacts/ui/, after checking that every control on it has a name."""
    unlabelled = await tab.evaluate(UNLABELLED)
    assert not unlabelled, f"controls without an accessible name on {name}: {unlabelled}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await tab.evaluate("document.getElementById('toasts')?.replaceChildren()")  # passing notices hide content
    await tab.screenshot(path=str(path), full_page=True)
    return path


async def sign_in(tab: Any, base_url: str, key: str) -> None:
    await tab.goto(f"{base_url}/ui")
    await tab.get_by_label("API key").fill(key)
    await tab.get_by_role("button", name="Sign in").click()
    await tab.get_by_role("button", name="Sign out").wait_for()


async def chat(base_url: str, key: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hello"}]},
        )
