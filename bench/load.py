"""The load generator: wrk with a Lua script that POSTs a body and prints its figures as JSON."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

MARKER = "BENCH-RESULT "
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    MARKER, summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    """One measurement: ``connections`` clients keep POSTing ``body`` to ``url`` for ``duration`` seconds."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    connections: int
    duration: int  # whole seconds: wrk takes no fractions
    timeout: int = 30


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: Mapping[str, int]  # "status" counts non-2xx answers

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _lua_string(text: str) -> str:
    level = "="
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def lua_script(load: Load) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(load.body.decode())}"]
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in load.headers.items()]
    lines.append(f"MARKER = {_lua_string(MARKER)}")
    return "\n".join(lines) + "\n" + _DONE


def run_wrk(wrk: str, load: Load, *, core: int) -> LoadResult:
    """Run wrk (one thread) pinned to ``core`` and parse the figures its ``done`` hook prints."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(lua_script(load))
        script.flush()
        argv = [
            "taskset", "-c", str(core), wrk, "-t1", f"-c{load.connections}", f"-d{load.duration}s",
            f"--timeout={load.timeout}s", "-s", script.name, load.url,
        ]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, timeout=load.duration + load.timeout + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    for line in out.stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            return LoadResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                errors={kind: data[kind] for kind in ERROR_KINDS if data[kind]},
            )
    raise RuntimeError(f"wrk printed no result line:\n{out.stdout}\n{out.stderr}")
