"""Takes the README's dashboard screenshot, docs/dashboard.png, from a real proxy in headless Chromium.

    .venv/bin/python -m tests.ui.readme_screenshot [output.png]

A proxy with three model groups (fake OpenAI and Ollama upstreams), a few keys of different teams,
some traffic for each, then the admin's Spend page signed in with the master key. Needs Debian's
chromium (``make test-deps``); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from tests.conftest import MASTER_KEY, standard_config, start_proxy
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ui.conftest import CHROMIUM, LAUNCH_ARGS, sign_in

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
KEYS = [
    ("support-bot", "support", 14, "gpt-fake"),
    ("search", "search", 9, "llama3"),
    ("batch-jobs", "data", 5, "gpt-fake"),
]


async def main(output: Path) -> None:
    from playwright.async_api import async_playwright

    openai_fake, ollama_fake = FakeOpenAI(), FakeOllama()
    await openai_fake.start()
    await ollama_fake.start()
    proxy = await asyncio.to_thread(start_proxy, standard_config(openai_fake.api_base, ollama_fake.url))
    try:
        admin = {"authorization": f"Bearer {MASTER_KEY}"}
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            for alias, team, calls, model in KEYS:
                await client.post("/team/new", json={"team_id": team}, headers=admin)
                made = await client.post(
                    "/key/generate", json={"key_alias": alias, "team_id": team, "max_budget": 50}, headers=admin
                )
                key = made.json()["key"]
                for i in range(calls):
                    body = {"model": model, "messages": [{"role": "user", "content": "hello " * (i + 1)}]}
                    await client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
            await asyncio.sleep(2)  # spend is written in batches
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
            page = await (await browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")).new_page()
            await sign_in(page, proxy.url, MASTER_KEY)
            await page.get_by_role("heading", name="Spend", level=1).wait_for()
            await page.wait_for_load_state("networkidle")
            await page.evaluate("document.getElementById('toasts')?.replaceChildren()")
            output.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(output))
            await browser.close()
    finally:
        await asyncio.to_thread(proxy.stop)
        await openai_fake.stop()
        await ollama_fake.stop()
    print(f"wrote {output}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
