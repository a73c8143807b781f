"""Client APIs: each one parses its own wire format into the gateway's request and encodes the answer.

``base.Frontend`` is what a client API is; ``endpoint.Endpoint`` is the one HTTP skeleton they all run
on. OpenAI chat/completions/embeddings (``openai.py``), Anthropic Messages (``anthropic.py``), the
OpenAI Responses API (``responses/``), images/moderations/audio/rerank (``media.py``), Azure's path
form (``azure.py``), batch completion over a comma-separated model (``batch.py``) and Ollama's API
(``ollama/``).
"""

from __future__ import annotations

from collections.abc import Mapping

from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Operation
from proxyllm.frontends import azure
from proxyllm.frontends.anthropic import CountTokensFrontend, MessagesFrontend
from proxyllm.frontends.base import Frontend, Services
from proxyllm.frontends.endpoint import Endpoint
from proxyllm.frontends.media import (
    ImagesFrontend,
    ModerationsFrontend,
    RerankFrontend,
    SpeechFrontend,
    TranscriptionFrontend,
)
from proxyllm.frontends.ollama.frontend import ollama_endpoints
from proxyllm.frontends.openai import OpenAIFrontend
from proxyllm.frontends.responses.frontend import ResponsesFrontend
from proxyllm.frontends.responses.store import ResponseStore


def llm_endpoints(
    runtime: Services, openai_paths: Mapping[Operation, tuple[str, ...]], response_store: ResponseStore
) -> JSONObject:
    """Every model endpoint by path: raw ASGI apps the application dispatches before its routing."""
    endpoints: JSONObject = {}
    for operation, paths in openai_paths.items():
        endpoint = Endpoint(runtime, OpenAIFrontend(operation))
        for path in paths:
            endpoints[path] = endpoint
    endpoints["/v1/messages"] = Endpoint(runtime, MessagesFrontend(runtime.router))
    endpoints["/v1/messages/count_tokens"] = Endpoint(runtime, CountTokensFrontend(runtime.router))
    responses = Endpoint(runtime, ResponsesFrontend(runtime.auth, response_store, runtime.router))
    endpoints["/v1/responses"] = endpoints["/responses"] = responses
    media: dict[Operation, Frontend] = {
        Operation.IMAGE_GENERATION: ImagesFrontend(),
        Operation.MODERATION: ModerationsFrontend(runtime.router),
        Operation.SPEECH: SpeechFrontend(),
        Operation.TRANSCRIPTION: TranscriptionFrontend(),
        Operation.RERANK: RerankFrontend(),
    }
    for operation, frontend in media.items():
        endpoint = Endpoint(runtime, frontend)
        for path in MEDIA_PATHS[operation]:
            endpoints[path] = endpoint
    # Azure's path form: /openai/deployments/{deployment}/<the OpenAI path> (frontends/azure.py)
    frontends: dict[Operation, Frontend] = {op: OpenAIFrontend(op) for op in openai_paths} | media
    for operation, suffix in azure.SUFFIXES.items():
        if operation in frontends:
            endpoints[azure.template(suffix)] = Endpoint(runtime, azure.AzurePath(frontends[operation]))
    for path, frontend in ollama_endpoints().items():  # Ollama's API (frontends/ollama/)
        endpoints[path] = Endpoint(runtime, frontend)
    return endpoints


MEDIA_PATHS = {
    Operation.IMAGE_GENERATION: ("/v1/images/generations", "/images/generations"),
    Operation.MODERATION: ("/v1/moderations", "/moderations"),
    Operation.SPEECH: ("/v1/audio/speech", "/audio/speech"),
    Operation.TRANSCRIPTION: ("/v1/audio/transcriptions", "/audio/transcriptions"),
    Operation.RERANK: ("/v1/rerank", "/rerank", "/v2/rerank"),  # LiteLLM serves all three
}
