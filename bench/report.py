"""The results as a markdown table, with ratios, the aims of issue 2, the command and the machine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.load import LoadResult
from bench.mock import STREAM_CHUNKS

# Issue 2's aims, for one worker on the same machine in the same run.
AIM_THROUGHPUT_RATIO = 30.0
AIM_ADDED_P50_MS = 1.0
AIM_RSS_MB = 120.0
AIM_STARTUP_S = 2.0


@dataclass(frozen=True)
class DirectFigures:
    """The mock upstream hit directly by the load generator: the ceiling and the base latency."""

    throughput: LoadResult
    latency: LoadResult


@dataclass(frozen=True)
class ServerFigures:
    name: str
    product: str
    version: str
    throughput: LoadResult  # non-streaming, concurrency 50
    latency: LoadResult  # non-streaming, concurrency 1
    stream: LoadResult  # streaming, concurrency 50
    rss_mb: float
    startup_s: float

    def loads(self) -> dict[str, LoadResult]:
        return {"req/s": self.throughput, "latency": self.latency, "stream": self.stream}


@dataclass(frozen=True)
class RunInfo:
    date: str
    command: str
    duration: int
    connections: int
    stream_connections: int
    server_core: int
    load_core: int
    machine: Sequence[str]
    notes: Sequence[str]
    sustained: int | None = None


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def _ratio(a: float, b: float) -> str:
    if b == 0:
        return "-"
    r = a / b
    return f"{r:,.1f}x" if r >= 10 else f"{r:.2f}x"


def table(direct: DirectFigures, servers: Sequence[ServerFigures], info: RunInfo) -> list[str]:
    c, sc = info.connections, info.stream_connections
    head = [
        "server",
        f"req/s @c{c}",
        f"p99 @c{c} (ms)",
        "p50 @c1 (ms)",
        "p99 @c1 (ms)",
        "added p50 vs direct (ms)",
        f"stream req/s @c{sc}",
        "RSS MB",
        "start-up s",
    ]
    rows = [
        [
            "mock upstream, direct (nginx)",
            _num(direct.throughput.per_second),
            _ms(direct.throughput.p99_ms),
            _ms(direct.latency.p50_ms),
            _ms(direct.latency.p99_ms),
            "-",
            "-",
            "-",
            "-",
        ]
    ]
    for s in servers:
        rows.append(
            [
                s.name,
                _num(s.throughput.per_second),
                _ms(s.throughput.p99_ms),
                _ms(s.latency.p50_ms),
                _ms(s.latency.p99_ms),
                _ms(s.latency.p50_ms - direct.latency.p50_ms),
                _num(s.stream.per_second),
                _num(s.rss_mb),
                f"{s.startup_s:.2f}",
            ]
        )
    base = next((s for s in servers if s.product == "LiteLLM"), None)
    for s in servers:
        if base is None or s.product == base.product:
            continue
        added, base_added = (x.latency.p50_ms - direct.latency.p50_ms for x in (s, base))
        rows.append(
            [
                f"**{s.name} / {base.name}**",
                _ratio(s.throughput.per_second, base.throughput.per_second),
                _ratio(s.throughput.p99_ms, base.throughput.p99_ms),
                _ratio(s.latency.p50_ms, base.latency.p50_ms),
                _ratio(s.latency.p99_ms, base.latency.p99_ms),
                _ratio(added, base_added),
                _ratio(s.stream.per_second, base.stream.per_second),
                _ratio(s.rss_mb, base.rss_mb),
                _ratio(s.startup_s, base.startup_s),
            ]
        )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def aims(direct: DirectFigures, servers: Sequence[ServerFigures]) -> list[str]:
    ours = next((s for s in servers if s.product == "proxyllm"), None)
    if ours is None:
        return []
    base = next((s for s in servers if s.product == "LiteLLM"), None)
    added = ours.latency.p50_ms - direct.latency.p50_ms

    def line(label: str, met: bool, measured: str) -> str:
        return f"- {label}: {measured} — {'met' if met else '**missed**'}"

    out = [f"Aims of issue 2 ({ours.name}, one worker):", ""]
    if base is not None:
        ratio = ours.throughput.per_second / base.throughput.per_second if base.throughput.per_second else 0.0
        out.append(
            line(f">= {AIM_THROUGHPUT_RATIO:g}x LiteLLM's req/s", ratio >= AIM_THROUGHPUT_RATIO, f"{ratio:,.1f}x")
        )
    out += [
        line(f"added p50 at c=1 < {AIM_ADDED_P50_MS:g} ms", added < AIM_ADDED_P50_MS, f"{added:.3f} ms"),
        line(f"RSS < {AIM_RSS_MB:g} MB", ours.rss_mb < AIM_RSS_MB, f"{ours.rss_mb:.0f} MB"),
        line(f"start-up < {AIM_STARTUP_S:g} s", ours.startup_s < AIM_STARTUP_S, f"{ours.startup_s:.2f} s"),
    ]
    for other in servers:  # further proxyllm runs (virtual key, cache, ...) against the first one
        if other is not ours and other.product == ours.product:
            share = other.throughput.per_second / ours.throughput.per_second if ours.throughput.per_second else 0.0
            out.append(f"- {other.name}: {share:.0%} of {ours.name}'s req/s")
    return out


def errors(direct: DirectFigures, servers: Sequence[ServerFigures]) -> list[str]:
    found = [("mock direct", "req/s", direct.throughput), ("mock direct", "latency", direct.latency)]
    found += [(s.name, kind, result) for s in servers for kind, result in s.loads().items()]
    bad = [
        f"- {name}, {kind}: {result.error_count:,} of {result.requests:,} requests failed "
        + ", ".join(f"{k}={v:,}" for k, v in result.errors.items())
        for name, kind, result in found
        if result.error_count
    ]
    return ["Errors during load (wrk: `status` = non-2xx answers):", "", *bad] if bad else ["No request failed."]


def render(direct: DirectFigures, servers: Sequence[ServerFigures], info: RunInfo) -> str:
    goals = aims(direct, servers)
    parts = [
        "# proxyllm vs LiteLLM proxy: benchmark",
        "",
        f"{info.date} · `{info.command}`",
        "",
        *table(direct, servers, info),
        "",
        *([*goals, ""] if goals else []),
        *errors(direct, servers),
        "",
        "How it was measured:",
        "",
        f"- each server pinned to core {info.server_core} (`taskset`), 1 worker; wrk (1 thread) and the nginx mock "
        f"on core {info.load_core}; one LiteLLM-format config.yaml for every server: master key, no `database_url`",
        f"- {info.duration:g} s per measurement after a warm-up; req/s at {info.connections} connections, "
        f"latency at 1 connection, streaming (`stream: true`, {STREAM_CHUNKS} chunks + usage + [DONE]) at "
        f"{info.stream_connections} connections"
        + (f"; the req/s run lasts {info.sustained} s (a sustained load)" if info.sustained else ""),
        "- added p50 = server p50 - mock-direct p50; RSS = VmRSS of the server and its children after the load; "
        "start-up = spawn to the first 200 from /health/liveliness",
        *(f"- {note}" for note in info.notes),
        "",
        "Machine:",
        "",
        *(f"- {line}" for line in info.machine),
        *(f"- {s.name}: {s.version}" for s in servers),
    ]
    return "\n".join(parts) + "\n"
