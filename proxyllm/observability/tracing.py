"""OpenTelemetry traces of model calls, exported over OTLP (HTTP/protobuf or gRPC).

Off by default, and then free: nothing here imports the OpenTelemetry SDK, no hook is added, the
router's ``attempt_wrapper`` stays None and the upstream HTTP client has no trace config. It is on when
the config says ``litellm_settings.callbacks: ["otel"]`` (LiteLLM's switch) or the standard variables
ask for it: ``OTEL_TRACES_EXPORTER=otlp|console``, or an ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``.
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn it off whatever the config says.
Then the ``otel`` extra must be installed (``pip install 'proxyllm[otel]'``; the Docker image has it).

One trace per model call, following the OpenTelemetry GenAI semantic conventions:

- ``{operation} {model}`` (SERVER): the whole request, continuing the client's ``traceparent``, with
  ``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.id``,
  ``gen_ai.usage.input_tokens`` / ``output_tokens``, ``gen_ai.provider.name`` (and the older
  ``gen_ai.system``), ``error.type`` on failures, and the proxy's own ``proxyllm.*`` facts;
- ``admission`` : auth, limits, budgets, billing and cache checks, up to the first upstream attempt;
- ``{operation} {upstream model}`` (CLIENT): each upstream attempt (retries and fallbacks each get
  one), whose span context goes to the upstream as its ``traceparent``;
- ``stream``: for streams, from the first event to the last one sent to the client.

Configuration is the SDK's: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf``, the default, or ``grpc``), ``OTEL_EXPORTER_OTLP_ENDPOINT``
(default ``http://localhost:4318``, or ``:4317`` for gRPC), ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``. Spans are exported in batches by the SDK's background thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from types import SimpleNamespace
from typing import TYPE_CHECKING, Protocol, TypeVar

from proxyllm.core.context import CURRENT_SCOPE, RequestContext, Slot
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ProxyError
from proxyllm.core.hooks import Hook
from proxyllm.observability.span_attributes import deployment_attributes, request_attributes, server_attributes

if TYPE_CHECKING:
    import aiohttp
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Status

    from proxyllm.config.schema import ProxyConfig
    from proxyllm.core.router import Router
    from proxyllm.core.upstream_http import UpstreamHTTP

log = logging.getLogger("proxyllm.tracing")

OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
TRUE = ("1", "true", "yes", "on")
_ID = re.compile(rb'"id"\s*:\s*"([^"]{1,256})"')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"]{1,256})"')
SPANS: Slot[_Spans] = Slot("otel")

# The span of the upstream attempt running in this task: its context goes out as the traceparent.
UPSTREAM_SPAN: ContextVar[Span | None] = ContextVar("proxyllm_upstream_span", default=None)


def tracing_wanted(callbacks: list[str], env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in TRUE:
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    if "otel" in (c.strip().lower() for c in callbacks):
        return True
    return exporter in ("otlp", "console") or bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


T = TypeVar("T")


class Wiring(Protocol):
    """What tracing wires itself into: the config and environment that turn it on, the router (each
    upstream attempt gets a span) and the upstream client (which sends the span's ``traceparent``)."""

    config: ProxyConfig
    env: Mapping[str, str]
    router: Router
    http: UpstreamHTTP


def tracing_hooks(runtime: Wiring) -> list[Hook]:
    """The tracing hook when tracing is on (also wiring the router and the upstream client), else none."""
    settings = runtime.config.litellm_settings
    if not tracing_wanted(settings.callbacks, runtime.env):
        return []
    hook = TracingHook(runtime.env)
    runtime.router.attempt_wrapper = hook.wrap_attempt
    runtime.http.trace_configs.append(hook.trace_config())
    return [hook]


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        target = endpoint or base or "http://localhost:4317"
        return GrpcExporter(endpoint=target, insecure=target.startswith("http://"))
    if protocol not in ("http/protobuf", "http"):
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r} is not supported (http/protobuf or grpc)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    if endpoint is None:
        endpoint = (base or "http://localhost:4318").rstrip("/") + "/v1/traces"
    return HttpExporter(endpoint=endpoint)


class TracingHook(Hook):
    name = "tracing"

    def __init__(self, env: Mapping[str, str]) -> None:
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        except ImportError as exc:
            from proxyllm.core.errors import StartupError

            raise StartupError(
                f"tracing is on but the OpenTelemetry SDK is not installed ({exc.name}): "
                "pip install 'proxyllm[otel]', or unset OTEL_* / litellm_settings.callbacks"
            ) from None
        from proxyllm import __version__

        attributes = {"service.name": env.get("OTEL_SERVICE_NAME") or "proxyllm", "service.version": __version__}
        try:
            exporter = _exporter(env)
        except ValueError as exc:
            from proxyllm.core.errors import StartupError

            raise StartupError(str(exc)) from None
        self.provider = TracerProvider(resource=Resource.create(attributes))
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("proxyllm", __version__)
        self.trace = trace
        self.propagator = TraceContextTextMapPropagator()
        self.server_kind = trace.SpanKind.SERVER
        self.client_kind = trace.SpanKind.CLIENT
        self.internal_kind = trace.SpanKind.INTERNAL
        from opentelemetry.trace import Status, StatusCode

        self._status, self._error_code = Status, StatusCode.ERROR
        log.info("OpenTelemetry tracing is on (service %s)", attributes["service.name"])

    def error_status(self, message: str) -> Status:
        return self._status(self._error_code, message)

    # -- the request span ----------------------------------------------------------------------

    async def before_call(self, ctx: RequestContext) -> None:
        carrier = self._incoming_headers(ctx)
        parent = self.propagator.extract(carrier) if carrier else None
        operation = OPERATIONS.get(ctx.operation.value, ctx.operation.value)
        started = time.time_ns() - int((time.perf_counter() - ctx.started) * 1e9)
        scope = CURRENT_SCOPE.get()
        root = self.tracer.start_span(
            f"{operation} {ctx.model}",
            context=parent,
            kind=self.server_kind,
            start_time=started,
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": ctx.model,
                "http.request.method": "POST",
                "url.path": scope["path"] if scope is not None else "",
                "proxyllm.request_id": ctx.request_id,
                "proxyllm.stream": ctx.stream,
                **request_attributes(ctx.body),
            },
        )
        in_root = self.trace.set_span_in_context(root)
        admission = self.tracer.start_span("admission", context=in_root, kind=self.internal_kind)
        ctx.put(SPANS, _Spans(root, in_root, admission))

    async def after_call(self, ctx: RequestContext) -> None:
        spans = ctx.get(SPANS)
        if spans is None:
            return
        now = time.time_ns()
        root = spans.root
        spans.end_admission(now)
        if spans.stream is not None:
            spans.stream.set_attribute("proxyllm.stream.events", ctx.output_chunks)
            if ctx.outcome != "success":
                spans.stream.set_attribute("proxyllm.outcome", ctx.outcome)
            spans.stream.end(now)
        dep = ctx.deployment
        if dep is not None:
            for key, value in deployment_attributes(dep).items():
                root.set_attribute(key, value)
        usage = ctx.usage
        if usage is not None:
            root.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            root.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
        if spans.response_id:
            root.set_attribute("gen_ai.response.id", spans.response_id)
        if spans.response_model:
            root.set_attribute("gen_ai.response.model", spans.response_model)
        principal = ctx.principal
        if principal is not None and principal.key_alias:
            root.set_attribute("proxyllm.key_alias", principal.key_alias)
        if ctx.cost is not None:
            root.set_attribute("proxyllm.cost_usd", float(ctx.cost))
        root.set_attribute("proxyllm.retries", ctx.retries)
        root.set_attribute("proxyllm.fallbacks", ctx.fallbacks)
        if ctx.cache_hit:
            root.set_attribute("proxyllm.cache_hit", True)
        error = ctx.error
        status = 499 if ctx.outcome == "cancelled" else error.status if error is not None else 200
        root.set_attribute("http.response.status_code", status)
        if error is not None:
            root.set_attribute("error.type", error.kind.value[0])
            root.set_status(self.error_status(error.message[:500]))
        elif ctx.outcome == "cancelled":
            root.set_attribute("error.type", "cancelled")
        root.end(now)

    def _incoming_headers(self, ctx: RequestContext) -> dict[str, str]:
        scope = CURRENT_SCOPE.get()
        raw = scope["headers"] if scope is not None else ctx.request_headers
        if not raw:
            return {}
        items: Iterable[tuple[str, str]]
        if isinstance(raw, Mapping):
            items = raw.items()
        else:
            items = ((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)
        return {k.lower(): v for k, v in items if k.lower() in ("traceparent", "tracestate")}

    # -- upstream attempts ---------------------------------------------------------------------

    def wrap_attempt(
        self, ctx: RequestContext, attempt: Callable[[Deployment], Awaitable[T]]
    ) -> Callable[[Deployment], Awaitable[T]]:
        spans = ctx.get(SPANS)
        if spans is None:  # a call that did not pass the hooks (not expected): untraced
            return attempt
        operation = OPERATIONS.get(ctx.operation.value, ctx.operation.value)

        async def traced(dep: Deployment) -> T:
            spans.end_admission(time.time_ns())
            spans.attempts += 1
            span = self.tracer.start_span(
                f"{operation} {dep.upstream_model}",
                context=spans.in_root,
                kind=self.client_kind,
                attributes={
                    "gen_ai.operation.name": operation,
                    "gen_ai.request.model": dep.upstream_model,
                    "proxyllm.attempt": spans.attempts,
                    "proxyllm.deployment": dep.id,
                    "proxyllm.model_group": dep.model_name,
                    **deployment_attributes(dep),
                    **server_attributes(dep.api_base),
                },
            )
            token = UPSTREAM_SPAN.set(span)
            try:
                result = await attempt(dep)
            except ProxyError as err:
                span.set_attribute("error.type", err.kind.value[0])
                span.set_attribute("http.response.status_code", err.status)
                span.set_status(self.error_status(err.message[:500]))
                span.end()
                raise
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.end()
                raise
            finally:
                UPSTREAM_SPAN.reset(token)
            head = result[0] if isinstance(result, tuple) else result
            if isinstance(head, bytes | bytearray):
                spans.note_response(bytes(head[:1024]), span)
            now = time.time_ns()
            span.end(now)
            if isinstance(result, tuple):  # a stream: its first event is in hand, the rest follows
                spans.stream = self.tracer.start_span(
                    "stream", context=spans.in_root, kind=self.internal_kind, start_time=now
                )
            return result

        return traced

    def trace_config(self) -> aiohttp.TraceConfig:
        """Sends the current attempt's span context upstream as ``traceparent`` (W3C Trace Context)."""
        import aiohttp

        config = aiohttp.TraceConfig()
        inject = self.propagator.inject
        in_span = self.trace.set_span_in_context

        async def on_request_start(
            _: aiohttp.ClientSession, __: SimpleNamespace, params: aiohttp.TraceRequestStartParams
        ) -> None:
            span = UPSTREAM_SPAN.get()
            if span is not None:
                inject(params.headers, context=in_span(span))

        config.on_request_start.append(on_request_start)
        return config

    async def stop(self) -> None:
        await asyncio.to_thread(self.provider.shutdown)  # exports what is still queued, off the event loop

    def flush(self, timeout_ms: int = 10_000) -> bool:
        return bool(self.provider.force_flush(timeout_ms))


class _Spans:
    __slots__ = ("admission", "attempts", "in_root", "response_id", "response_model", "root", "stream")

    def __init__(self, root: Span, in_root: Context, admission: Span | None) -> None:
        self.root = root
        self.in_root = in_root
        self.admission = admission
        self.attempts = 0
        self.stream: Span | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None

    def end_admission(self, now: int) -> None:
        if self.admission is not None:
            self.admission.end(now)
            self.admission = None

    def note_response(self, head: bytes, span: Span) -> None:
        found = _ID.search(head)
        if found:
            self.response_id = found.group(1).decode("utf-8", "replace")
            span.set_attribute("gen_ai.response.id", self.response_id)
        model = _MODEL.search(head)
        if model:
            self.response_model = model.group(1).decode("utf-8", "replace")
            span.set_attribute("gen_ai.response.model", self.response_model)
