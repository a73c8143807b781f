"""Processes pinned to a core, their memory, and small blocking HTTP helpers (stdlib only)."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    """A child in its own session (so its whole tree can be signalled), pinned with taskset."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.monotonic() just before the spawn
    _log: IO[bytes]

    @classmethod
    def spawn(
        cls, argv: list[str], *, core: int, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Process:
        handle = log.open("wb")
        started = time.monotonic()
        popen = subprocess.Popen(
            ["taskset", "-c", str(core), *argv],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        return cls(popen, log, started, handle)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def rss_mb(self) -> float:
        """Resident memory of the process and all its descendants, in MB."""
        total_kb = sum(_vm_rss_kb(pid) for pid in [self.pid, *descendants(self.pid)])
        return total_kb / 1024

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds and to children left behind."""
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
            _signal_group(self.pid, signal.SIGKILL)
            self.popen.wait(5)
        self._log.close()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


def _vm_rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def http_call(
    method: str, url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None, timeout: float = 30
) -> Reply:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Reply(resp.status, resp.read())
    finally:
        conn.close()


def wait_for_http(url: str, *, timeout: float, process: Process, interval: float = 0.02) -> float:
    """Seconds from the process's spawn until ``GET url`` answers 200; fails early if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(
                f"process exited ({process.popen.returncode}) before {url} answered:\n{process.log_tail()}"
            )
        try:
            if http_call("GET", url, timeout=2).status == 200:
                return time.monotonic() - process.started
        except OSError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:g}s:\n{process.log_tail()}")
