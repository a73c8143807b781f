"""The ``proxyllm`` command: flags, start-up errors, and the embedded Ollama default."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from proxyllm import __version__
from proxyllm.cli import parse_args
from tests.fakes.base import free_port
from tests.fakes.ollama_upstream import FakeOllama

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxyllm", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    assert run("--version").stdout.strip() == f"proxyllm {__version__}"


def test_flags_and_port_from_env(monkeypatch: object) -> None:
    args = parse_args(["--config", "c.yaml", "--port", "8080", "--host", "127.0.0.1", "--num_workers", "2"])
    assert (args.config, args.port, args.host, args.num_workers) == ("c.yaml", 8080, "127.0.0.1", 2)
    os.environ["PORT"] = "5055"
    try:
        assert parse_args([]).port == 5055
    finally:
        del os.environ["PORT"]
    assert parse_args([]).port == 4000


def test_bad_config_fails_start_up_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model_list:\n  - model_name: x\n    litellm_params: {}\n")
    result = run("--config", str(config))
    assert result.returncode == 2
    assert f"{config}: model_list[0] (model_name 'x'): litellm_params.model is missing" in result.stderr
    assert "Traceback" not in result.stderr


async def test_embedded_default_serves_every_local_ollama_model(ollama_upstream: FakeOllama, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OLLAMA_API_BASE": ollama_upstream.url, "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    env.pop("LITELLM_MASTER_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "proxyllm",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(100):
                try:
                    models = await client.get("/v1/models")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert {m["id"] for m in models.json()["data"]} == set(ollama_upstream.models)
            chat = await client.post(
                "/v1/chat/completions", json={"model": "llama3:latest", "messages": [{"role": "user", "content": "hi"}]}
            )
            assert chat.json()["choices"][0]["message"]["content"] == "Hello from the fake upstream"
    finally:
        proc.terminate()
        output = (await proc.communicate())[0].decode()
    assert "NO MASTER KEY IS SET" in output
