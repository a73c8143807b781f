"""OpenTelemetry traces, received by real OTLP receivers (HTTP/protobuf and gRPC) and decoded with
opentelemetry-proto: the spans of a request, their GenAI attributes and parent ids, the client's
traceparent continued and the upstream's traceparent sent; and nothing at all when tracing is off."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from proxyllm.config.loader import parse_config
from proxyllm.observability.tracing import TracingHook, tracing_wanted
from proxyllm.server.runtime import Runtime
from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.openai_upstream import FakeOpenAI
from tests.observability.otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver, ReceivedSpan

ROOT = Path(__file__).resolve().parents[2]
HI = [{"role": "user", "content": "hi there"}]
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


def config(upstream: FakeOpenAI, callbacks: bool = False) -> str:
    return f"""
model_list:
  - model_name: gpt-fake
    litellm_params:
      model: openai/gpt-fake
      api_base: {upstream.api_base}
      api_key: sk-upstream-secret
router_settings: {{num_retries: 2, retry_after: 0}}
general_settings: {{master_key: {MASTER_KEY}}}
litellm_settings: {{callbacks: {'["otel"]' if callbacks else "[]"}}}
"""


@pytest.fixture
async def http_receiver() -> AsyncIterator[OtlpHttpReceiver]:
    receiver = OtlpHttpReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def grpc_receiver() -> AsyncIterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def tracing_hook(proxy: ProxyServer) -> TracingHook:
    (hook,) = [h for h in proxy.runtime.gateway.hooks if isinstance(h, TracingHook)]
    return hook


def by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    out: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


async def test_http_protobuf_trace_of_a_retried_call(
    proxy_factory: Any, openai_upstream: FakeOpenAI, http_receiver: OtlpHttpReceiver
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.url, "OTEL_SERVICE_NAME": "gateway-under-test"}
    proxy = await asyncio.to_thread(proxy_factory, config(openai_upstream), env=env)
    openai_upstream.fail(500, "first attempt fails")
    traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
        resp = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-fake", "messages": HI, "max_tokens": 50, "temperature": 0.5},
            headers={"authorization": f"Bearer {MASTER_KEY}", "traceparent": traceparent},
        )
    assert resp.status_code == 200 and resp.headers["x-litellm-attempted-retries"] == "1"
    assert await asyncio.to_thread(tracing_hook(proxy).flush)  # off this loop: the HTTP receiver runs on it
    spans = await http_receiver.wait_for(CLIENT_TRACE, 4)
    assert http_receiver.content_types[0] == "application/x-protobuf"
    (root,) = [s for s in spans if s.kind == "server"]
    (admission,) = by_name(spans)["admission"]
    first, second = sorted((s for s in spans if s.kind == "client"), key=lambda s: s.start_ns)
    assert root.name == "chat gpt-fake"

    # The request span continues the client's trace; every other span is its child.
    assert root.kind == "server" and root.parent_span_id == CLIENT_SPAN
    assert {s.parent_span_id for s in (admission, first, second)} == {root.span_id}
    assert root.resource["service.name"] == "gateway-under-test"
    assert admission.end_ns <= first.start_ns <= first.end_ns <= second.start_ns <= second.end_ns <= root.end_ns
    attrs = root.attributes
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "gpt-fake"
    assert attrs["gen_ai.provider.name"] == "openai" and attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.response.id"] == resp.json()["id"] == "chatcmpl-fake"
    assert attrs["gen_ai.response.model"] == "gpt-fake"
    assert attrs["gen_ai.usage.input_tokens"] == resp.json()["usage"]["prompt_tokens"] == 2
    assert attrs["gen_ai.usage.output_tokens"] == resp.json()["usage"]["completion_tokens"]
    assert attrs["gen_ai.request.max_tokens"] == 50 and attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["http.response.status_code"] == 200 and attrs["proxyllm.retries"] == 1
    assert attrs["proxyllm.request_id"] == resp.headers["x-litellm-call-id"]
    assert attrs["url.path"] == "/v1/chat/completions"
    assert "error.type" not in attrs

    # One client span per upstream attempt: the failed one says why.
    assert first.name == second.name == "chat gpt-fake" and first.kind == second.kind == "client"
    assert first.attributes["error.type"] == "upstream" and first.attributes["http.response.status_code"] == 500
    assert first.status_code == 2  # STATUS_CODE_ERROR
    assert first.attributes["proxyllm.attempt"] == 1 and second.attributes["proxyllm.attempt"] == 2
    assert second.attributes["gen_ai.response.id"] == "chatcmpl-fake"
    assert second.attributes["server.address"] == "127.0.0.1"
    assert second.attributes["server.port"] == openai_upstream.port

    # Each attempt went upstream with its own span as the parent: the trace crosses the proxy.
    sent = [r.headers.get("traceparent") for r in openai_upstream.requests[-2:]]
    assert sent == [f"00-{CLIENT_TRACE}-{first.span_id}-01", f"00-{CLIENT_TRACE}-{second.span_id}-01"]
    assert all("sk-upstream-secret" not in str(s.attributes) for s in spans)


async def test_grpc_trace_of_a_stream_with_litellm_callbacks(
    proxy_factory: Any, openai_upstream: FakeOpenAI, grpc_receiver: OtlpGrpcReceiver
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": grpc_receiver.url,
        "OTEL_TRACES_EXPORTER": "otlp",
    }
    proxy = await asyncio.to_thread(proxy_factory, config(openai_upstream, callbacks=True), env=env)
    client = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-fake", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    await client.close()
    assert chunks[0].id == "chatcmpl-fake"
    assert await asyncio.to_thread(tracing_hook(proxy).flush)  # off this loop: the HTTP receiver runs on it
    sent = openai_upstream.requests[-1].headers["traceparent"]
    trace_id = sent.split("-")[1]
    spans = await grpc_receiver.wait_for(trace_id, 4)
    named = by_name(spans)
    (stream_span,) = named["stream"]
    (admission,) = named["admission"]
    root = next(s for s in spans if s.kind == "server")
    attempt = next(s for s in spans if s.kind == "client")
    assert root.parent_span_id == ""  # no traceparent from this client: a new trace
    assert {s.parent_span_id for s in (admission, attempt, stream_span)} == {root.span_id}
    assert sent.startswith(f"00-{trace_id}-{attempt.span_id}-")  # sampled; the SDK may add the random-id flag
    assert attempt.end_ns <= stream_span.start_ns <= stream_span.end_ns <= root.end_ns
    assert stream_span.attributes["proxyllm.stream.events"] >= 1
    assert root.attributes["proxyllm.stream"] is True
    assert root.attributes["gen_ai.response.id"] == "chatcmpl-fake"
    assert root.attributes["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens  # type: ignore[union-attr]


async def test_a_refused_call_is_an_error_span(
    proxy_factory: Any, openai_upstream: FakeOpenAI, http_receiver: OtlpHttpReceiver
) -> None:
    proxy = await asyncio.to_thread(
        proxy_factory, config(openai_upstream), env={"OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.url}
    )
    traceparent = f"00-{CLIENT_TRACE[:-4]}beef-{CLIENT_SPAN}-01"
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
        resp = await client.post(
            "/v1/chat/completions",
            json={"model": "gpt-fake", "messages": HI},
            headers={"authorization": "Bearer sk-wrong", "traceparent": traceparent},
        )
    assert resp.status_code == 401
    assert await asyncio.to_thread(tracing_hook(proxy).flush)  # off this loop: the HTTP receiver runs on it
    spans = await http_receiver.wait_for(CLIENT_TRACE[:-4] + "beef", 2)
    root = next(s for s in spans if s.kind == "server")
    assert root.attributes["error.type"] == "authentication" and root.status_code == 2
    assert root.attributes["http.response.status_code"] == 401
    assert not [s for s in spans if s.kind == "client"]  # never reached an upstream
    assert "sk-wrong" not in str([s.attributes for s in spans])


def test_when_tracing_is_on() -> None:
    assert not tracing_wanted([], {})
    assert tracing_wanted(["otel"], {})
    assert tracing_wanted([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_wanted([], {"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing_wanted(["otel"], {"OTEL_SDK_DISABLED": "true"})
    assert not tracing_wanted(["otel"], {"OTEL_TRACES_EXPORTER": "none"})


def test_off_by_default_nothing_is_loaded_or_wired() -> None:
    runtime = Runtime(parse_config("model_list: []\n"), env={"DATABASE_URL": "sqlite:///:memory:"})
    assert not [h for h in runtime.gateway.hooks if h.name == "tracing"]
    assert runtime.router.attempt_wrapper is None and runtime.http.trace_configs == []
    code = (
        "import sys\n"
        "from proxyllm.config.loader import parse_config\n"
        "from proxyllm.server.app import create_app\n"
        "from proxyllm.server.runtime import Runtime\n"
        "create_app(Runtime(parse_config('model_list: []'), env={'DATABASE_URL': 'sqlite:///:memory:'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk') or m.startswith('grpc')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_an_unsupported_protocol_stops_start_up() -> None:
    from proxyllm.core.errors import StartupError

    with pytest.raises(StartupError, match="OTEL_EXPORTER_OTLP_PROTOCOL 'http/json' is not supported"):
        Runtime(
            parse_config("model_list: []\nlitellm_settings: {callbacks: [otel]}\n"),
            env={"DATABASE_URL": "sqlite:///:memory:", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        )
