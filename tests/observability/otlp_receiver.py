"""Real OTLP trace receivers for the tests: HTTP/protobuf (``POST /v1/traces``) and gRPC (TraceService).

Both decode what they receive with opentelemetry-proto and keep every span, flattened with its
resource's attributes, so tests can assert names, kinds, attributes and parent ids.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.fakes.base import free_port

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int
    start_ns: int
    end_ns: int


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, which) if which else None


def decode(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=KINDS.get(span.kind, str(span.kind)),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        resource=resource,
                        status_code=span.status.code,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


class _Spans:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()

    def add(self, spans: list[ReceivedSpan]) -> None:
        with self.lock:
            self.spans.extend(spans)

    def for_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    async def wait_for(self, trace_id: str, count: int, timeout: float = 15) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        while len(found := self.for_trace(trace_id)) < count:
            assert time.monotonic() < deadline, f"got {[s.name for s in found]}, expected {count} spans"
            await asyncio.sleep(0.05)
        return found


class OtlpHttpReceiver(_Spans):
    """``POST /v1/traces`` with an ExportTraceServiceRequest body (protobuf, optionally gzip)."""

    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self.content_types: list[str] = []
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def traces(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if request.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        self.content_types.append(request.headers.get("content-type", ""))
        self.add(decode(trace_service_pb2.ExportTraceServiceRequest.FromString(raw)))
        body = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")


class OtlpGrpcReceiver(_Spans, trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP TraceService over gRPC (insecure), in its own thread pool."""

    def __init__(self) -> None:
        super().__init__()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def Export(  # the generated service's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.add(decode(request))
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self) -> None:
        self.server.start()

    async def stop(self) -> None:
        self.server.stop(grace=None)
