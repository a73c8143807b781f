"""The mock upstream: nginx answering in the OpenAI chat-completions wire format with fixed bodies.

``/v1/chat/completions`` returns one ``chat.completion`` with usage; ``/sse/v1/chat/completions`` returns
the same answer as SSE chunks, a usage chunk and ``data: [DONE]``. Each proxy reaches them through its
own model group (see ``servers.write_config``). nginx answers a POST with ``return 200``, discarding the
request body, at tens of thousands of requests/s on one core: far above what a Python proxy can send.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.procs import Process, free_port, wait_for_http

UPSTREAM_MODEL = "bench-upstream-model"
STRIPE_PREFIX = "/stripe"
STRIPE_CUSTOMER = "cus_bench"
CREATED = 1_700_000_000
ANSWER = ["Hello", " from", " the", " mock", " upstream", "."]
STREAM_CHUNKS = len(ANSWER) + 2  # the role chunk, one per token, the finish chunk
USAGE = {"prompt_tokens": 12, "completion_tokens": len(ANSWER), "total_tokens": 12 + len(ANSWER)}
JSON_PREFIX = "/v1"
SSE_PREFIX = "/sse/v1"


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def completion_body() -> str:
    return _compact(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": UPSTREAM_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(ANSWER)},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def _chunk(delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def stream_body() -> str:
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": token}) for token in ANSWER]
    chunks.append(_chunk({}, "stop"))
    usage_chunk = {**_chunk({}), "choices": [], "usage": USAGE}
    events = [f"data: {_compact(c)}\n\n" for c in [*chunks, usage_chunk]]
    return "".join(events) + "data: [DONE]\n\n"


def models_body() -> str:
    return _compact({"object": "list", "data": [{"id": UPSTREAM_MODEL, "object": "model", "owned_by": "bench"}]})


def nginx_string(text: str) -> str:
    """A single-quoted nginx string; nginx expands ``\\n`` there, and ``$`` would start a variable."""
    if "$" in text:
        raise ValueError("nginx would read '$' in a fixed body as a variable")
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def nginx_conf(port: int, workdir: Path) -> str:
    def fixed(path: str, content_type: str, body: str) -> str:
        return f"""
        location = {path} {{
            default_type {content_type};
            return 200 {nginx_string(body)};
        }}"""

    locations = "".join(
        [
            fixed(f"{JSON_PREFIX}/chat/completions", "application/json", completion_body()),
            fixed(f"{SSE_PREFIX}/chat/completions", "text/event-stream", stream_body()),
            fixed(f"{JSON_PREFIX}/models", "application/json", models_body()),
            fixed(f"{SSE_PREFIX}/models", "application/json", models_body()),
            # Stripe stand-in for the meters run: the customer the bench links, and meter events accepted.
            fixed(
                f"{STRIPE_PREFIX}/v1/customers/{STRIPE_CUSTOMER}",
                "application/json",
                _compact({"id": STRIPE_CUSTOMER, "object": "customer"}),
            ),
            fixed(
                f"{STRIPE_PREFIX}/v2/billing/meter_event_session",
                "application/json",
                _compact(
                    {
                        "object": "v2.billing.meter_event_session",
                        "id": "mes_bench",
                        "authentication_token": "mes_token_bench",
                        "created": "2026-01-01T00:00:00.000Z",
                        "expires_at": "2099-01-01T00:00:00.000Z",
                        "livemode": False,
                    }
                ),
            ),
            fixed(f"{STRIPE_PREFIX}/v2/billing/meter_event_stream", "application/json", "{}"),
            # OTLP/HTTP collector stand-in for the tracing run: every export accepted (an empty response).
            fixed("/v1/traces", "application/x-protobuf", ""),
            fixed(
                f"{STRIPE_PREFIX}/v1/billing/meter_events",
                "application/json",
                _compact(
                    {
                        "object": "billing.meter_event",
                        "event_name": "bench_tokens",
                        "payload": {},
                        "identifier": "bench",
                        "timestamp": CREATED,
                        "created": CREATED,
                        "livemode": False,
                    }
                ),
            ),
        ]
    )
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    client_body_temp_path {workdir}/body;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        {locations}
        location / {{ return 404; }}
    }}
}}
"""


class MockUpstream:
    """nginx in the foreground, pinned to ``core``, with its config in a temporary directory."""

    def __init__(self, nginx: str, core: int) -> None:
        self.nginx = nginx
        self.core = core
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="bench-mock-")
        self.workdir = Path(self._dir.name)
        self.process: Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def json_api_base(self) -> str:
        return self.base_url + JSON_PREFIX

    @property
    def sse_api_base(self) -> str:
        return self.base_url + SSE_PREFIX

    @property
    def stripe_api_base(self) -> str:
        return self.base_url + STRIPE_PREFIX

    def start(self) -> None:
        conf = self.workdir / "nginx.conf"
        conf.write_text(nginx_conf(self.port, self.workdir))
        log = str(self.workdir / "error.log")
        check = subprocess.run(
            [self.nginx, "-t", "-q", "-p", str(self.workdir), "-c", str(conf), "-e", log], capture_output=True
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected the mock config: {check.stderr.decode(errors='replace')}")
        argv = [self.nginx, "-p", str(self.workdir), "-c", str(conf), "-e", log]
        self.process = Process.spawn(argv, core=self.core, log=self.workdir / "stdout.log")
        wait_for_http(self.base_url + JSON_PREFIX + "/models", timeout=10, process=self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        self._dir.cleanup()
