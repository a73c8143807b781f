"""The Codex CLI (``@openai/codex``) through the proxy: a custom provider with ``wire_api = "responses"``.

Codex answers a prompt and runs one shell tool call against an Ollama-backed model. The Ollama fake
here is scripted like a model that uses tools: asked by the user, it calls Codex's shell tool with a
command; given the command's output, it answers with it. Runs when Node and the codex binary are
present (``make test-deps`` installs them under .codex-npm when npm exists).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.ollama_upstream import STAMP, FakeOllama

pytestmark = pytest.mark.slow  # make test runs it when CI=true (make test-all always)

ROOT = Path(__file__).resolve().parents[2]
MARKER = "proxyllm-codex-42"
COMMAND = f"echo {MARKER.removesuffix('-42')}-$((6*7))"


def codex_binary() -> str | None:
    local = ROOT / ".codex-npm" / "node_modules" / ".bin" / "codex"
    if local.exists():
        return str(local)
    return shutil.which("codex")


def shell_call(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A call of Codex's shell tool, whatever this Codex version names it."""
    names = {t.get("function", {}).get("name"): t for t in tools}
    if "shell_command" in names:
        return {"name": "shell_command", "arguments": {"command": COMMAND}}
    if "exec_command" in names:
        return {"name": "exec_command", "arguments": {"cmd": COMMAND}}
    if "shell" in names:
        return {"name": "shell", "arguments": {"command": ["bash", "-lc", COMMAND]}}
    raise AssertionError(f"no shell tool among {sorted(n for n in names if n)}")


class ToolUsingOllama(FakeOllama):
    """/api/chat that calls the shell tool once, then answers with what the command printed."""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        last = body["messages"][-1]
        if last.get("role") == "tool":
            message: dict[str, Any] = {"role": "assistant", "content": f"The command printed {MARKER}."}
            if MARKER not in str(last.get("content")):
                message["content"] = "The command did not run."
        elif body.get("tools"):
            message = {"role": "assistant", "content": "", "tool_calls": [{"function": shell_call(body["tools"])}]}
        else:
            message = {"role": "assistant", "content": "ok"}
        final = {**self._final(body, 5), "message": {"role": "assistant", "content": ""}}
        lines = [{"model": body["model"], "created_at": STAMP, "done": False, "message": message}, final]
        if not body.get("stream", True):
            return web.json_response({**final, "message": message})
        raw = [orjson.dumps(line) + b"\n" for line in lines]
        return await self.stream_events(request, action, raw, "application/x-ndjson")


@pytest.fixture
async def tool_ollama() -> Any:
    fake = ToolUsingOllama()
    await fake.start()
    yield fake
    await fake.stop()


CONFIG = """
model_list:
  - model_name: llama3
    litellm_params:
      model: ollama_chat/llama3
      api_base: {base}
general_settings:
  master_key: {key}
"""


@pytest.mark.timeout(300)
async def test_codex_exec_runs_a_shell_tool(proxy_factory: Any, tool_ollama: ToolUsingOllama, tmp_path: Path) -> None:
    codex = codex_binary()
    if shutil.which("node") is None or codex is None:
        pytest.skip("Node.js and @openai/codex are not installed (make test-deps installs them when npm exists)")
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, CONFIG.format(base=tool_ollama.url, key=MASTER_KEY))
    home = tmp_path / "codex-home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        f"""
model = "llama3"
model_provider = "proxyllm"

[model_providers.proxyllm]
name = "proxyllm"
base_url = "{proxy.url}/v1"
env_key = "PROXYLLM_TEST_KEY"
wire_api = "responses"
"""
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "PROXYLLM_TEST_KEY": MASTER_KEY,
        "NO_COLOR": "1",
    }
    args = [
        codex,
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",  # the tmp dir is the sandbox; no landlock here
        "-C",
        str(work),
        "Print the answer of the shell command for six times seven.",
    ]
    run = await asyncio.to_thread(subprocess.run, args, env=env, capture_output=True, text=True, timeout=240)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert f"The command printed {MARKER}." in run.stdout, output[-4000:]
    chats = [r for r in tool_ollama.requests if r.path == "/api/chat"]
    assert len(chats) >= 2
    tool_messages = [m for m in chats[-1].body["messages"] if m.get("role") == "tool"]
    assert tool_messages and MARKER in str(tool_messages[-1]["content"])
