"""``make run`` from a fresh clone: a runtime-only install from the hashed lock, then a listening proxy
that answers a request through a fake upstream — the README's first ten minutes, timed.

It clones this repository's HEAD commit into a temporary directory and installs from PyPI, so it runs in
CI (``.ci/run``: PROXYLLM_REQUIRE_SERVICES=1 or PROXYLLM_FRESH_CLONE=1) and is skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.fakes.base import free_port
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.slow  # make test runs it when CI=true (make test-all always)

REPO = Path(__file__).resolve().parents[2]
LISTENING = "Uvicorn running on"
INSTALL_AND_START_LIMIT = 240.0  # seconds; about 25 s on the build machine


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def clone_head(into: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=REPO)
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(into)], check=True)
    git("checkout", "--quiet", head, cwd=into)


async def test_make_run_from_a_fresh_clone(tmp_path: Path, openai_upstream: FakeOpenAI) -> None:
    if not (REQUIRE_SERVICES or os.environ.get("PROXYLLM_FRESH_CLONE") == "1"):
        pytest.skip("installs from PyPI: runs in CI, or with PROXYLLM_FRESH_CLONE=1")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "proxyllm"
    await asyncio.to_thread(clone_head, clone)
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-fake\n"
        f"    litellm_params: {{model: openai/gpt-fake, api_base: {openai_upstream.api_base}, api_key: sk-up}}\n"
    )
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL")
        and not k.startswith(("DATABASE_", "REDIS_", "PROXYLLM_", "LITELLM_", "OTEL_"))
    }
    env |= {"PORT": str(port), "OLLAMA_API_BASE": f"http://127.0.0.1:{free_port()}"}
    log = tmp_path / "make-run.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *["make", "run", f"CONFIG={config}", "PY=python3"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: make and the proxy stop together
        )
    try:
        while LISTENING not in (text := read(log)):
            assert proc.returncode is None, text
            assert time.monotonic() - started < INSTALL_AND_START_LIMIT, text
            await asyncio.sleep(0.2)
        listening_after = time.monotonic() - started
        print(f"make run, fresh clone to listening: {listening_after:.1f} s")

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert (await client.get("/health/readiness")).status_code == 200
            resp = await client.post(
                "/v1/chat/completions", json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}
            )
        assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"]
        assert openai_upstream.requests[-1].headers["Authorization"] == "Bearer sk-up"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    await asyncio.to_thread(check_runtime_only, clone / ".venv")


def read(path: Path) -> str:
    return path.read_text(errors="replace")


def check_runtime_only(venv: Path) -> None:
    """None of the dev tools (nor the optional OpenTelemetry SDK) were installed by make run."""
    for dev_only in ("pytest", "mypy", "ruff", "playwright", "opentelemetry.sdk"):
        found = subprocess.run([venv / "bin" / "python", "-c", f"import {dev_only}"], capture_output=True, check=False)
        assert found.returncode != 0, f"{dev_only} is installed by make run"
    assert (venv / ".runtime-stamp").exists() and not (venv / ".dev-stamp").exists()
