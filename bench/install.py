"""What the benchmark needs beyond the project's venv: nginx and wrk (apt), LiteLLM (its own venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
LITELLM_REQUIREMENT = "litellm[proxy]"
APT_PACKAGES = {"nginx": "nginx-light", "wrk": "wrk"}  # binary -> Debian package
SBIN = ("/usr/sbin", "/sbin")


class InstallError(RuntimeError):
    """A tool the benchmark needs is missing and could not be installed."""


def which(binary: str) -> str | None:
    return shutil.which(binary) or shutil.which(binary, path=os.pathsep.join(SBIN))


def ensure_apt_tools() -> dict[str, str]:
    """Path of each tool, installing the missing ones with apt (once)."""
    missing = [pkg for binary, pkg in APT_PACKAGES.items() if which(binary) is None]
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print(f"bench: installing {' '.join(missing)} with apt", flush=True)
        try:
            subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise InstallError(f"could not install {' '.join(missing)} with apt-get: {exc}") from None
    paths = {binary: which(binary) for binary in APT_PACKAGES}
    absent = [binary for binary, path in paths.items() if path is None]
    if absent:
        raise InstallError(f"not found after installing: {', '.join(absent)}")
    return {binary: path for binary, path in paths.items() if path is not None}


def ensure_litellm() -> Path:
    """The ``litellm`` executable in bench/.venv-litellm, creating the venv on first use."""
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    print(f"bench: installing {LITELLM_REQUIREMENT} into {LITELLM_VENV} (once; it is large)", flush=True)
    if not (LITELLM_VENV / "bin" / "python").exists():
        venv.create(LITELLM_VENV, with_pip=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    try:
        subprocess.run([*pip, "install", LITELLM_REQUIREMENT], check=True)
    except subprocess.CalledProcessError as exc:
        raise InstallError(f"pip install {LITELLM_REQUIREMENT} failed ({exc.returncode})") from None
    if not executable.exists():
        raise InstallError(f"{executable} is missing after pip install")
    return executable


def package_version(python: Path | str, distribution: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def tool_version(argv: list[str]) -> str:
    """First line a tool prints about its version (nginx writes to stderr, wrk exits non-zero)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def git_revision() -> str:
    """The commit of the working tree, ``-dirty`` when it had uncommitted changes."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=BENCH_DIR, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
