"""Client APIs: each one parses its own wire format into the gateway's request and encodes the answer.

``base.Frontend`` is what a client API is; ``endpoint.Endpoint`` is the one HTTP skeleton they all run
on. OpenAI chat/completions/embeddings (``openai.py``), Anthropic Messages (``anthropic.py``), the
OpenAI Responses API (``responses/``), Ollama's API (``ollama/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxyllm.core.types import Operation
from proxyllm.frontends.anthropic import CountTokensFrontend, MessagesFrontend
from proxyllm.frontends.endpoint import Endpoint
from proxyllm.frontends.ollama.frontend import ollama_endpoints
from proxyllm.frontends.openai import OpenAIFrontend
from proxyllm.frontends.responses.frontend import ResponsesFrontend
from proxyllm.frontends.responses.store import ResponseStore
from proxyllm.server.runtime import Runtime


def llm_endpoints(
    runtime: Runtime, openai_paths: Mapping[Operation, tuple[str, ...]], response_store: ResponseStore
) -> dict[str, Any]:
    """Every model endpoint by path: raw ASGI apps the application dispatches before its routing."""
    endpoints: dict[str, Any] = {}
    for operation, paths in openai_paths.items():
        endpoint = Endpoint(runtime, OpenAIFrontend(operation))
        for path in paths:
            endpoints[path] = endpoint
    endpoints["/v1/messages"] = Endpoint(runtime, MessagesFrontend(runtime.router))
    endpoints["/v1/messages/count_tokens"] = Endpoint(runtime, CountTokensFrontend(runtime.router))
    responses = Endpoint(runtime, ResponsesFrontend(runtime.auth, response_store, runtime.router))
    endpoints["/v1/responses"] = endpoints["/responses"] = responses
    for path, frontend in ollama_endpoints().items():  # Ollama's API (frontends/ollama/)
        endpoints[path] = Endpoint(runtime, frontend)
    return endpoints


def response_store(runtime: Runtime) -> ResponseStore:
    return ResponseStore(runtime.db, runtime.config.general_settings.responses_retention_days)
