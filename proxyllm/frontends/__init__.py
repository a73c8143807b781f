"""Client APIs: each one parses its own wire format into the gateway's request and encodes the answer.

``base.Frontend`` is what a client API is; ``endpoint.Endpoint`` is the one HTTP skeleton they all run
on. OpenAI chat/completions/embeddings (``openai.py``), Anthropic Messages (``anthropic.py``), the
OpenAI Responses API (``responses/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxyllm.core.types import Operation
from proxyllm.frontends.anthropic import CountTokensFrontend, MessagesFrontend
from proxyllm.frontends.base import Services
from proxyllm.frontends.endpoint import Endpoint
from proxyllm.frontends.openai import OpenAIFrontend
from proxyllm.frontends.responses.frontend import ResponsesFrontend
from proxyllm.frontends.responses.store import ResponseStore


def llm_endpoints(
    runtime: Services, openai_paths: Mapping[Operation, tuple[str, ...]], response_store: ResponseStore
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
    return endpoints
