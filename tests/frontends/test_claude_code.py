"""Claude Code (``@anthropic-ai/claude-code``) through the proxy, in print mode, on ``/v1/messages``.

Claude Code answers a prompt by running one Bash command, with a virtual key as its
``ANTHROPIC_API_KEY``, against an Ollama-backed model (translated both ways) and against an Anthropic
deployment (its own request and Anthropic's answer passed through). The fakes are scripted like a
model that uses tools: asked by the user, they call Claude Code's ``Bash`` tool; given the command's
output, they answer with it. Telemetry and other non-essential traffic are off, and HOME is a tmp dir.
Runs when Node and the claude binary are present (``make test-deps`` installs them under .claude-npm).

``PROXYLLM_RECORD_CLAUDE_CODE=1`` rewrites ``fixtures/claude_code_requests.json`` from what this Claude
Code version sent (long texts shortened), for ``test_claude_code_requests.py``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.anthropic_upstream import API_KEY, FakeAnthropic
from tests.fakes.ollama_upstream import STAMP, FakeOllama

pytestmark = pytest.mark.slow  # a real CLI: make test runs it when CI=true (make test-all always)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "claude_code_requests.json"
MARKER = "proxyllm-claude-42"
COMMAND = f"echo {MARKER.removesuffix('-42')}-$((6*7))"
PROMPT = "Run the shell command that prints six times seven and tell me what it printed."


def claude_binary() -> str | None:
    local = ROOT / ".claude-npm" / "node_modules" / ".bin" / "claude"
    if local.exists():
        return str(local)
    return shutil.which("claude")


def bash_tool(names: list[str]) -> dict[str, Any]:
    assert "Bash" in names, f"no Bash tool among {sorted(names)}"
    return {"command": COMMAND, "description": "Print six times seven"}


def answer_for(tool_output: str) -> str:
    return f"The command printed {MARKER}." if MARKER in tool_output else "The command did not run."


class ToolUsingOllama(FakeOllama):
    """/api/chat that calls Bash once, then answers with what the command printed."""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        tool_results = [m for m in body["messages"] if m.get("role") == "tool"]
        names = [t.get("function", {}).get("name") for t in body.get("tools") or []]
        if tool_results:
            message: dict[str, Any] = {"role": "assistant", "content": answer_for(str(tool_results[-1]["content"]))}
        elif names and PROMPT in orjson.dumps(body["messages"]).decode():
            call = {"function": {"name": "Bash", "arguments": bash_tool(names)}}
            message = {"role": "assistant", "content": "", "thinking": "I will run it.", "tool_calls": [call]}
        else:
            message = {"role": "assistant", "content": "ok"}
        final = {**self._final(body, 5), "message": {"role": "assistant", "content": ""}}
        lines = [{"model": body["model"], "created_at": STAMP, "done": False, "message": message}, final]
        if not body.get("stream", True):
            return web.json_response({**final, "message": message})
        raw = [orjson.dumps(line) + b"\n" for line in lines]
        return await self.stream_events(request, action, raw, "application/x-ndjson")


class ToolUsingAnthropic(FakeAnthropic):
    """/v1/messages that calls Bash once, then answers with what the command printed."""

    def _content(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
            blocks.append({"type": "thinking", "thinking": "Run it.", "signature": "sig-claude-code"})
        results = [
            b
            for m in body["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "tool_result"
        ]
        names = [t.get("name") for t in body.get("tools") or []]
        if results:
            blocks.append({"type": "text", "text": answer_for(orjson.dumps(results).decode())})
        elif names and PROMPT in orjson.dumps(body["messages"]).decode():
            blocks.append({"type": "tool_use", "id": "toolu_cc_1", "name": "Bash", "input": bash_tool(names)})
        else:
            blocks.append({"type": "text", "text": "ok"})
        return blocks


@pytest.fixture
async def tool_ollama() -> Any:
    fake = ToolUsingOllama()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def tool_anthropic() -> Any:
    fake = ToolUsingAnthropic(models=("claude-fake-4",))
    await fake.start()
    yield fake
    await fake.stop()


CONFIG = """
model_list:
  - model_name: llama3
    litellm_params:
      model: ollama_chat/llama3
      api_base: {ollama}
    model_info:
      supports_reasoning: true  # Claude Code's adaptive thinking becomes Ollama's think
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-fake-4
      api_base: {anthropic}
      api_key: {anthropic_key}
general_settings:
  master_key: {key}
"""


async def run_claude(
    claude: str, proxy: ProxyServer, key: str, model: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    home = tmp_path / f"home-{model}"
    work = tmp_path / f"work-{model}"
    home.mkdir()
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": proxy.url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "NO_COLOR": "1",
    }
    args = [claude, "-p", PROMPT, "--model", model, "--allowedTools", "Bash"]
    return await asyncio.to_thread(subprocess.run, args, env=env, cwd=work, capture_output=True, text=True, timeout=240)


async def virtual_key(proxy: ProxyServer) -> str:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as c:
        resp = await c.post(
            "/key/generate",
            json={"models": ["llama3", "claude-sonnet"], "key_alias": "claude-code"},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["key"])


def record(requests: list[dict[str, Any]]) -> None:
    """What Claude Code sent, with long texts shortened so the fixture stays readable."""

    def shorten(value: Any) -> Any:
        if isinstance(value, str):
            return value if len(value) <= 300 else value[:300] + "…"
        if isinstance(value, list):
            return [shorten(v) for v in value]
        if isinstance(value, dict):
            return {k: shorten(v) for k, v in value.items()}
        return value

    FIXTURE.write_bytes(orjson.dumps([shorten(r) for r in requests], option=orjson.OPT_INDENT_2) + b"\n")


@pytest.mark.timeout(600)
async def test_claude_code_runs_a_bash_tool_through_ollama_and_anthropic(
    proxy_factory: Any, tool_ollama: ToolUsingOllama, tool_anthropic: ToolUsingAnthropic, tmp_path: Path
) -> None:
    claude = claude_binary()
    if shutil.which("node") is None or claude is None:
        pytest.skip("Node.js and @anthropic-ai/claude-code are not installed (make test-deps installs them)")
    text = CONFIG.format(ollama=tool_ollama.url, anthropic=tool_anthropic.url, anthropic_key=API_KEY, key=MASTER_KEY)
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, text)
    key = await virtual_key(proxy)

    run = await run_claude(claude, proxy, key, "llama3", tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert f"The command printed {MARKER}." in run.stdout, output[-4000:]
    chats = [r for r in tool_ollama.requests if r.path == "/api/chat"]
    tool_messages = [m for m in chats[-1].body["messages"] if m.get("role") == "tool"]
    assert tool_messages and MARKER in str(tool_messages[-1]["content"])
    assert chats[0].body.get("think") is True, "Claude Code's adaptive thinking became Ollama's think"

    run = await run_claude(claude, proxy, key, "claude-sonnet", tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert f"The command printed {MARKER}." in run.stdout, output[-4000:]
    sent = [r for r in tool_anthropic.requests if r.path == "/v1/messages"]
    assert all(r.headers.get("x-api-key") == API_KEY for r in sent), "the upstream's key, never the virtual key"
    first, last = sent[0].body, sent[-1].body
    assert first["model"] == "claude-fake-4" and "tools" in first
    assert any(m["role"] == "system" for m in first["messages"]), "Claude Code's mid-conversation system turn"
    results = [
        b
        for m in last["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    ]
    assert results and MARKER in orjson.dumps(results).decode()
    assert any(
        b.get("type") == "thinking" and b.get("signature") == "sig-claude-code"
        for m in last["messages"]
        if m["role"] == "assistant"
        for b in m["content"]
    ), "the signed thinking block came back to Anthropic as Anthropic sent it"
    if os.environ.get("PROXYLLM_RECORD_CLAUDE_CODE"):
        bodies = [{**r.body, "model": "claude-sonnet"} for r in sent]  # the name Claude Code asked for
        record(
            [
                {"path": "/v1/messages?beta=true", "anthropic-beta": sent[0].headers.get("anthropic-beta"), "body": b}
                for b in bodies
            ]
        )
