"""The README works when copied: its config, curl and SDK examples run as written.

The README's config is started with the real ``proxyllm`` command in an empty directory (so the
database is the SQLite default), with the environment variables the README says to export. Only what
cannot exist here is pointed elsewhere: the Ollama hosts ``hugo`` / ``hugo-2`` become a fake Ollama,
OpenAI is a fake behind ``OPENAI_API_BASE``, Stripe a fake behind ``STRIPE_API_BASE``, and
``localhost:4000`` the port the proxy got. Every ``sh`` block that talks to the proxy then runs in bash
in README order, with curl failing on any HTTP error (``--fail-with-body``); shell variables a block
sets (``KEY=$(...)``) are kept for the next ones, as in one terminal. Between the customer's top-up and
the rest of their journey, the test pays on the (fake) Stripe Checkout page the top-up returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxyllm.config.loader import parse_config
from tests.fakes.base import free_port
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.stripe_upstream import FakeStripeUpstream

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MASTER = "sk-my-master-key"
WEBHOOK_SECRET = "whsec_readme_test"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
ASSIGNED = re.compile(r"^([A-Z_][A-Z0-9_]*)=", re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def readme_config() -> str:
    (config,) = [b for b in blocks("yaml") if "model_list:" in b]
    return config


def readme_env() -> dict[str, str]:
    """What the README says to export before starting, taken from its own ``export`` line."""
    (line,) = [ln for b in blocks("sh") for ln in b.splitlines() if ln.startswith("export LITELLM_MASTER_KEY=")]
    return dict(pair.split("=", 1) for pair in line.removeprefix("export ").split())


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(models=("gpt-4o-mini",))
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def stripe_fake() -> AsyncIterator[FakeStripeUpstream]:
    fake = FakeStripeUpstream(WEBHOOK_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


def test_every_yaml_example_loads_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in readme_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    configs = blocks("yaml")
    assert len(configs) >= 2
    for text in configs:
        parse_config(text, source="README.md")  # raises ConfigError on any problem
    main = parse_config(readme_config(), source="README.md")
    assert main.general_settings.master_key == readme_env()["LITELLM_MASTER_KEY"] == MASTER
    assert main.general_settings.database_url is None  # DATABASE_URL, else the SQLite default


def read(path: Path) -> str:
    return path.read_text()


async def wait_ready(url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            assert proc.returncode is None, read(log)
            try:
                if (await client.get(url + "/health/readiness")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, read(log)
            await asyncio.sleep(0.1)


class Shell:
    """Runs README blocks in bash, one after the other, keeping the variables they assign."""

    def __init__(self, workdir: Path, port: int, env: dict[str, str]) -> None:
        self.state = workdir / "readme-vars.sh"
        self.state.write_text("")
        self.port = port
        self.env = env

    def run(self, block: str) -> str:
        names = sorted(set(ASSIGNED.findall(block)))
        script = (
            "set -euo pipefail\n"
            'curl() { command curl --silent --show-error --fail-with-body "$@"; }\n'
            f"source {self.state}\n"
            + block.replace("localhost:4000", f"127.0.0.1:{self.port}")
            + (f"\ndeclare -p {' '.join(names)} >> {self.state}\n" if names else "\n")
        )
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=60, env=self.env, check=False
        )
        assert result.returncode == 0, f"README block failed:\n{block}\n--- stdout\n{result.stdout}\n{result.stderr}"
        return result.stdout


@pytest.mark.slow
async def test_the_readme_journeys_run_as_written(
    tmp_path: Path, ollama_upstream: FakeOllama, openai_fake: FakeOpenAI, stripe_fake: FakeStripeUpstream
) -> None:
    served = readme_config()
    for host in ("http://hugo:11434", "http://hugo-2:11434"):
        assert host in served
        served = served.replace(host, ollama_upstream.url)
    (tmp_path / "config.yaml").write_text(served)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "OTEL_", "STRIPE_", "PROXYLLM_", "LITELLM_", "OPENAI_"))
    }
    env |= readme_env()
    env |= {
        "OPENAI_API_BASE": openai_fake.api_base,
        "STRIPE_API_KEY": "sk_test_readme",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_USE_PREPAID_BALANCE": "true",
        "STRIPE_API_BASE": stripe_fake.url,
    }
    plain = {k: v for k, v in env.items() if not k.startswith("STRIPE_")}
    url = f"http://127.0.0.1:{port}"
    stripe_fake.webhook_url = url + "/stripe/webhook"
    shell = Shell(tmp_path, port, env)
    examples = [b for b in blocks("sh") if "curl " in b]
    assert len(examples) == 4, examples

    # As set up by "A config": no Stripe.
    async with running_proxy(tmp_path, port, plain, "plain.log"):
        assert (tmp_path / "proxyllm.db").exists()  # no DATABASE_URL: the SQLite default
        async with httpx.AsyncClient(base_url=url) as client:
            root = await client.get("/", follow_redirects=False)
            assert root.status_code in (302, 307) and root.headers["location"] == "/ui"
            assert (await client.get("/", follow_redirects=True)).status_code == 200
        calling, admin_journey = [await asyncio.to_thread(shell.run, example) for example in examples[:2]]

        # "Calling it": curl with the master key
        (answer,) = json_values(calling)
        assert answer["choices"][0]["message"]["content"] and answer["model"] == "llama3"

        # The admin's journey: key -> call -> spend
        chat, info, logs = json_values(admin_journey)
        assert chat["object"] == "chat.completion"
        key_info = info["info"]
        assert key_info["key_alias"] == "app-1" and float(key_info["spend"]) > 0
        (row,) = logs
        assert row["model_group"] == "llama3" and float(row["spend"]) > 0

        # The OpenAI SDK example, then the Responses API one (it goes on with the same client)
        chat_example, responses_example = blocks("python")
        sdk = (
            (chat_example + "\n" + responses_example)
            .replace("http://localhost:4000/v1", url + "/v1")
            .replace('"sk-..."', f'"{MASTER}"')
        )
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", sdk], capture_output=True, text=True, timeout=60, env=env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(ollama_upstream.reply_text)

    # As set up by "Billing with Stripe": the same proxy with prepaid billing on.
    async with running_proxy(tmp_path, port, env, "billing.log"):
        # The customer's journey: top-up (paid on the checkout page) -> balance -> call -> usage
        (topup,) = json_values(await asyncio.to_thread(shell.run, examples[2]))
        async with httpx.AsyncClient() as browser:
            paid = await browser.post(topup["checkout_url"].replace("localhost", "127.0.0.1"), follow_redirects=False)
        assert paid.status_code == 303, paid.text
        balance, chat, ledger, usage = json_values(await asyncio.to_thread(shell.run, examples[3]))
        assert float(balance["balance"]) == 20
        assert chat["object"] == "chat.completion"
        kinds = [entry["kind"] for entry in ledger["data"]]
        assert kinds == ["usage", "topup"], kinds  # newest first: the call was charged to the credit
        assert [r["model_group"] for r in usage] == ["llama3"]

    for log in ("plain.log", "billing.log"):
        text = read(tmp_path / log)
        assert "Traceback" not in text and MASTER not in text


@contextlib.asynccontextmanager
async def running_proxy(workdir: Path, port: int, env: dict[str, str], log_name: str) -> AsyncIterator[None]:
    """The README's start command in ``workdir`` (config.yaml there), until the block ends."""
    log = workdir / log_name
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "proxyllm", "--config", "config.yaml", "--port", str(port)],
            *["--host", "127.0.0.1"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc, log)
        yield
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


def json_values(text: str) -> list[Any]:
    """The JSON documents curl printed one after the other (bodies end without a newline)."""
    decoder = json.JSONDecoder()
    values, at = [], 0
    while (at := _skip_space(text, at)) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at
