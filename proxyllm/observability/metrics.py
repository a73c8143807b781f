"""Prometheus metrics (prometheus-client), served at ``GET /metrics``.

Per request, ``observe`` updates a handful of counters and histograms through label children kept in
a dict (no ``labels()`` call, no string work), so metering costs a few microseconds. Labels stay few:
the model group (``other`` for names this proxy does not serve, so clients cannot grow the label set),
the HTTP status, the error kind. Gauges that describe state (each deployment healthy or cooling, the
spend writer's queue) are read when scraped, not per request.

Where they overlap with the OpenTelemetry GenAI semantic conventions, the same facts are also exported
under the conventions' names, so GenAI dashboards work unchanged: ``gen_ai_server_request_duration_seconds``,
``gen_ai_server_time_to_first_token_seconds`` (histograms) and ``gen_ai_client_token_usage`` (a histogram
per call, ``gen_ai_token_type`` input or output), labelled ``gen_ai_operation_name`` and
``gen_ai_request_model`` (the model group, or ``other``).

Several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set before the proxy starts (it must
name an empty directory), prometheus-client keeps values in files there and a scrape of any worker
adds up every worker's counters and histograms; the state gauges of live workers are combined too
(a deployment counts as cooling when any worker sees it cooling; queued rows are summed), refreshed
by each worker every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from proxyllm.core.background import cancel
from proxyllm.core.context import RequestContext
from proxyllm.core.routing.stats import DeploymentStats

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
OTHER = "other"
REFRESH_INTERVAL = 5.0


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _ModelMetrics:
    """The label children of one model group (and, for the GenAI names, one operation), made once."""

    __slots__ = (
        "cache_hits",
        "cache_misses",
        "gen_ai_duration",
        "gen_ai_input",
        "gen_ai_output",
        "gen_ai_ttft",
        "input_tokens",
        "latency",
        "output_tokens",
        "overhead",
        "spend",
        "ttft",
    )

    def __init__(self, metrics: Metrics, model: str, operation: str) -> None:
        self.gen_ai_duration = metrics.gen_ai_duration.labels(operation, model)
        self.gen_ai_ttft = metrics.gen_ai_ttft.labels(operation, model)
        self.gen_ai_input = metrics.gen_ai_tokens.labels(operation, model, "input")
        self.gen_ai_output = metrics.gen_ai_tokens.labels(operation, model, "output")
        self.latency = metrics.latency.labels(model)
        self.ttft = metrics.ttft.labels(model)
        self.overhead = metrics.overhead.labels(model)
        self.input_tokens = metrics.input_tokens.labels(model)
        self.output_tokens = metrics.output_tokens.labels(model)
        self.spend = metrics.spend.labels(model)
        self.cache_hits = metrics.cache_hits.labels(model)
        self.cache_misses = metrics.cache_misses.labels(model)


class Metrics:
    def __init__(
        self,
        *,
        known_model: Callable[[str], bool] = lambda _: True,
        deployments: Callable[[], Iterable[DeploymentStats]] = tuple,
        queued_rows: Callable[[], int] = lambda: 0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.known_model = known_model
        self.deployments = deployments
        self.queued_rows = queued_rows
        self.multiprocess = multiprocess_dir() is not None
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "proxyllm_requests", "LLM requests by model group and HTTP status", ["model", "status"], registry=r
        )
        self.failures = Counter(
            "proxyllm_request_failures",
            "Failed LLM requests by model group and error kind",
            ["model", "error"],
            registry=r,
        )
        self.latency = Histogram(
            "proxyllm_request_duration_seconds",
            "Time from request to the end of the response",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "proxyllm_time_to_first_token_seconds",
            "Streams: time from request to the first event sent",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "proxyllm_overhead_duration_seconds",
            "Time spent in the proxy itself (not waiting on upstreams) before the response",
            ["model"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.input_tokens = Counter("proxyllm_input_tokens", "Prompt tokens", ["model"], registry=r)
        self.output_tokens = Counter("proxyllm_output_tokens", "Completion tokens", ["model"], registry=r)
        self.spend = Counter("proxyllm_spend_usd", "Spend in US dollars", ["model"], registry=r)
        self.cache_hits = Counter(
            "proxyllm_cache_hits", "Responses served from the response cache", ["model"], registry=r
        )
        self.cache_misses = Counter(
            "proxyllm_cache_misses", "Cacheable requests the response cache could not answer", ["model"], registry=r
        )
        genai = ["gen_ai_operation_name", "gen_ai_request_model"]
        self.gen_ai_duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "GenAI semantic conventions: time to the end of the response",
            genai,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gen_ai_ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "GenAI semantic conventions: streams, time to the first event sent",
            genai,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gen_ai_tokens = Histogram(
            "gen_ai_client_token_usage",
            "GenAI semantic conventions: tokens per call, by gen_ai_token_type (input or output)",
            [*genai, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "proxyllm_rate_limit_rejections",
            "Requests refused by a rate or concurrency limit",
            ["scope", "limit"],
            registry=r,
        )
        self.deployment_state = Gauge(
            "proxyllm_deployment_state",
            "Deployment state: 0 healthy, 1 cooling down",
            ["model", "deployment"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.spend_queue = Gauge(
            "proxyllm_spend_queue_rows",
            "Spend-log rows waiting to be written to the database",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.low_balance_events = Counter(
            "proxyllm_low_balance_events",
            "Prepaid accounts whose balance fell below their threshold",
            ["account_type"],
            registry=r,
        )
        self.dead_letters = Counter(
            "proxyllm_dead_letters",
            "Queued writes (spend logs, charges, settlements, meter events) the database refused, set aside",
            ["kind"],
            registry=r,
        )
        self._models: dict[tuple[str, str], _ModelMetrics] = {}
        self._requests: dict[tuple[str, str], Counter] = {}
        self._failures: dict[tuple[str, str], Counter] = {}
        self._states: set[tuple[str, str]] = set()
        self._refresher: asyncio.Task[None] | None = None

    # -- per request ---------------------------------------------------------------------------

    def observe(self, ctx: RequestContext) -> None:
        model = self.model_label(ctx)
        operation = ctx.operation.value
        children = self._models.get((model, operation))
        if children is None:
            children = self._models[(model, operation)] = _ModelMetrics(
                self, model, OPERATIONS.get(operation, operation)
            )
        error = ctx.error
        outcome = ctx.outcome
        status = "499" if outcome == "cancelled" else str(error.status) if error is not None else "200"
        key = (model, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(model, status)
        counter.inc()
        if error is not None:
            fkey = (model, error.kind.value[0])
            failed = self._failures.get(fkey)
            if failed is None:
                failed = self._failures[fkey] = self.failures.labels(*fkey)
            failed.inc()
        now = time.perf_counter()
        children.latency.observe(now - ctx.started)
        children.gen_ai_duration.observe(now - ctx.started)
        first = ctx.first_chunk_at
        if first is not None:
            children.ttft.observe(first - ctx.started)
            children.gen_ai_ttft.observe(first - ctx.started)
        if ctx.deployment is not None:
            end = first if first is not None else now
            children.overhead.observe(max(0.0, end - ctx.started - ctx.upstream_wait))
        usage = ctx.usage
        if ctx.cache_hit:
            children.cache_hits.inc()
        else:
            if ctx.cache_miss:
                children.cache_misses.inc()
            if usage is not None:
                if usage.prompt_tokens:
                    children.input_tokens.inc(usage.prompt_tokens)
                    children.gen_ai_input.observe(usage.prompt_tokens)
                if usage.completion_tokens:
                    children.output_tokens.inc(usage.completion_tokens)
                    children.gen_ai_output.observe(usage.completion_tokens)
        cost = ctx.cost
        if cost:
            children.spend.inc(float(cost))

    def model_label(self, ctx: RequestContext) -> str:
        if ctx.deployment is not None or ctx.cache_hit:
            return ctx.model_group
        name = ctx.model
        return name if (name, ctx.operation.value) in self._models or self.known_model(name) else OTHER

    def rejected(self, scope: str, limit: str) -> None:
        self.rejections.labels(scope, limit).inc()

    # -- state, when scraped -------------------------------------------------------------------

    def refresh(self) -> None:
        now = time.monotonic()
        seen: set[tuple[str, str]] = set()
        for stats in self.deployments():
            labels = (stats.dep.model_name, stats.dep.id)
            seen.add(labels)
            self.deployment_state.labels(*labels).set(1 if stats.cool_until > now else 0)
        for gone in self._states - seen:
            with contextlib.suppress(KeyError):
                self.deployment_state.remove(*gone)
        self._states = seen
        self.spend_queue.set(self.queued_rows())

    def low_balance(self, account_type: str) -> None:
        self.low_balance_events.labels(account_type).inc()

    def dead_letter(self, kind: str) -> None:
        self.dead_letters.labels(kind).inc()

    def render(self) -> bytes:
        self.refresh()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    async def start(self) -> None:
        if self.multiprocess and self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_forever(), name="metrics-refresh")

    async def stop(self) -> None:
        await cancel(self._refresher)
        self._refresher = None
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            self.refresh()
