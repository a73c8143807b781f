"""``make bench``: proxyllm and the LiteLLM proxy on one config, one mock upstream, one load generator.

.venv/bin/python -m bench.run [--duration 15] [--only proxyllm] [--quick] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import install
from bench.load import Load, LoadResult, run_wrk
from bench.mock import ANSWER, MockUpstream
from bench.procs import http_call
from bench.report import DirectFigures, RunInfo, ServerFigures, render
from bench.servers import (
    DEFAULT_SCENARIOS,
    MODEL,
    OTLP_ENDPOINT_ENV,
    SCENARIOS,
    STREAM_MODEL,
    STRIPE_BASE_ENV,
    RunningServer,
    Scenario,
    start_server,
    write_config,
)

DEFAULT_OUTPUT = install.BENCH_DIR / "results" / "latest.md"
PROMPT = [{"role": "user", "content": "Say hello."}]


def chat_body(model: str, *, stream: bool) -> bytes:
    body: dict[str, object] = {"model": model, "messages": PROMPT, "max_tokens": 16}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


@dataclass(frozen=True)
class Plan:
    wrk: str
    duration: int
    warmup: int
    connections: int
    stream_connections: int
    server_core: int
    load_core: int
    sustained: int | None = None  # seconds of the req/s @c50 run, when longer than the others

    def run(self, url: str, body: bytes, headers: dict[str, str], connections: int, duration: int) -> LoadResult:
        return run_wrk(self.wrk, Load(url, body, headers, connections, duration), core=self.load_core)


def measure_direct(plan: Plan, mock: MockUpstream) -> DirectFigures:
    url = mock.json_api_base + "/chat/completions"
    body, headers = chat_body(MODEL, stream=False), {"Content-Type": "application/json"}
    print("bench: mock upstream, direct", flush=True)
    plan.run(url, body, headers, plan.connections, plan.warmup)
    return DirectFigures(
        throughput=plan.run(url, body, headers, plan.connections, plan.duration),
        latency=plan.run(url, body, headers, 1, plan.duration),
    )


def check_answers(server: RunningServer) -> None:
    """One plain and one streamed request must come back right before anything is timed."""
    url = server.base_url + "/v1/chat/completions"
    expected = "".join(ANSWER)
    reply = http_call("POST", url, body=chat_body(MODEL, stream=False), headers=server.headers())
    if reply.status != 200:
        raise RuntimeError(f"{server.scenario.name}: chat answered {reply.status}: {reply.body[:300]!r}")
    content = json.loads(reply.body)["choices"][0]["message"]["content"]
    if content != expected:
        raise RuntimeError(f"{server.scenario.name}: unexpected answer {content!r}")
    reply = http_call("POST", url, body=chat_body(STREAM_MODEL, stream=True), headers=server.headers())
    if reply.status != 200:
        raise RuntimeError(f"{server.scenario.name}: streamed chat answered {reply.status}: {reply.body[:300]!r}")
    events = [line[5:].strip() for line in reply.body.decode().splitlines() if line.startswith("data:")]
    if not events or events[-1] != "[DONE]":
        raise RuntimeError(f"{server.scenario.name}: stream did not end with [DONE]: {reply.body[-300:]!r}")
    chunks = [json.loads(e) for e in events[:-1]]
    streamed = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
    if streamed != expected:
        raise RuntimeError(f"{server.scenario.name}: unexpected streamed answer {streamed!r}")


def measure_server(plan: Plan, scenario: Scenario, config: Path, workdir: Path) -> ServerFigures:
    print(f"bench: {scenario.name}: starting", flush=True)
    version = scenario.version()  # now: the code that the server is about to import
    server = start_server(scenario, config=config, workdir=workdir, core=plan.server_core)
    try:
        print(f"bench: {scenario.name}: up in {server.startup_s:.2f}s, measuring", flush=True)
        check_answers(server)
        url, headers = server.base_url + "/v1/chat/completions", server.headers()
        plain, streamed = chat_body(MODEL, stream=False), chat_body(STREAM_MODEL, stream=True)
        plan.run(url, plain, headers, plan.connections, plan.warmup)
        plan.run(url, streamed, headers, plan.stream_connections, max(1, plan.warmup // 2))
        throughput = plan.run(url, plain, headers, plan.connections, plan.sustained or plan.duration)
        latency = plan.run(url, plain, headers, 1, plan.duration)
        stream = plan.run(url, streamed, headers, plan.stream_connections, plan.duration)
        rss = server.process.rss_mb()
    finally:
        server.stop()
    return ServerFigures(scenario.name, scenario.product, version, throughput, latency, stream, rss, server.startup_s)


def machine_notes(tools: dict[str, str], start_load: str) -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    notes = [
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}; load average (shared machine) "
        f"at the start {start_load}, at the end {load_average()}",
        f"Python {platform.python_version()}; {install.tool_version([tools['nginx'], '-v'])}; "
        + install.tool_version([tools["wrk"], "-v"]).split(" Copyright")[0],
    ]
    return notes


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement (default 15)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement, short warm-up: a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated scenarios to run, of: {', '.join(SCENARIOS)} (default: {','.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument("--connections", type=int, default=50, help="concurrency of the req/s runs (default 50)")
    parser.add_argument(
        "--sustained", type=int, default=None, help="seconds of the req/s run (e.g. 300 for a sustained load)"
    )
    parser.add_argument("--stream-connections", type=int, default=50, help="concurrency of the streaming run")
    parser.add_argument("--server-core", type=int, default=0, help="core the server under test is pinned to")
    parser.add_argument("--load-core", type=int, default=1, help="core for wrk and the mock upstream")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"markdown file (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only.split(",") if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if args.quick:
        args.duration = min(args.duration, 3)
    return args


def command_line(argv: Sequence[str]) -> str:
    command = shlex.join(["python", "-m", "bench.run", *argv])
    return f"make bench ({command})" if os.environ.get("MAKELEVEL") else command


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    tools = install.ensure_apt_tools()
    names = args.only.split(",")
    scenarios = [SCENARIOS[name] for name in names]
    for scenario in scenarios:
        if scenario.prepare is not None:
            scenario.prepare()
    plan = Plan(
        wrk=tools["wrk"],
        duration=args.duration,
        warmup=1 if args.quick else 3,
        connections=args.connections,
        stream_connections=args.stream_connections,
        server_core=args.server_core,
        load_core=args.load_core,
        sustained=args.sustained,
    )
    start_load, date = load_average(), dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        workdir = Path(tmp)
        mock = MockUpstream(tools["nginx"], core=plan.load_core)
        mock.start()
        os.environ[STRIPE_BASE_ENV] = mock.stripe_api_base  # for the meters run (servers.meters_env)
        os.environ[OTLP_ENDPOINT_ENV] = mock.base_url  # for the tracing run (servers.otel_env)
        try:
            config = workdir / "config.yaml"
            write_config(config, mock)
            direct = measure_direct(plan, mock)
            servers = [measure_server(plan, SCENARIOS[n], config, workdir / n) for n in names]
        finally:
            mock.stop()
    info = RunInfo(
        date=date,
        command=command_line(argv),
        duration=plan.duration,
        connections=plan.connections,
        stream_connections=plan.stream_connections,
        server_core=plan.server_core,
        load_core=plan.load_core,
        machine=machine_notes(tools, start_load),
        notes=[note for s in scenarios for note in s.notes],
        sustained=plan.sustained,
    )
    text = render(direct, servers, info)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"bench: written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
