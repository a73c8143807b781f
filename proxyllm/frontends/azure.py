"""Azure OpenAI's path form, so Azure clients (``AzureOpenAI(azure_endpoint=<proxy>, api_key=<virtual key>)``)
can point at the proxy: ``/openai/deployments/{deployment}/chat/completions?api-version=...`` and the
same for completions, embeddings, images, audio. The deployment is the model group; the key comes in
Azure's ``api-key`` header (or any other the proxy reads); ``api-version`` is accepted and not needed.
Each path runs the same endpoint as its OpenAI path, with the model taken from the path.
"""

from __future__ import annotations

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import invalid_request
from proxyllm.core.requests import load_json
from proxyllm.core.types import Operation
from proxyllm.frontends.base import Frontend, Incoming
from proxyllm.frontends.media import TranscriptionFrontend

PREFIX = "/openai/deployments/"
SUFFIXES = {
    Operation.CHAT: "/chat/completions",
    Operation.COMPLETION: "/completions",
    Operation.EMBEDDING: "/embeddings",
    Operation.IMAGE_GENERATION: "/images/generations",
    Operation.SPEECH: "/audio/speech",
    Operation.TRANSCRIPTION: "/audio/transcriptions",
}
# Longest first: "/chat/completions" before "/completions".
_BY_LENGTH = sorted(SUFFIXES.values(), key=len, reverse=True)


def template(suffix: str) -> str:
    return PREFIX + "{deployment}" + suffix


def route_of(path: str) -> str:
    """The endpoint key of an Azure path (``/openai/deployments/{deployment}/<suffix>``), else ""."""
    if path.startswith(PREFIX):
        for suffix in _BY_LENGTH:
            if path.endswith(suffix) and len(path) > len(PREFIX) + len(suffix):
                return template(suffix)
    return ""


def deployment_of(path: str) -> str:
    for suffix in _BY_LENGTH:
        if path.endswith(suffix):
            name = path[len(PREFIX) : -len(suffix)]
            if name and len(name) <= 255 and "\x00" not in name:
                return name
    raise invalid_request("the path names no deployment: /openai/deployments/{deployment}/...", param="model")


class AzurePath(Frontend):
    """Wraps a frontend: the model is the path's deployment (the body's own ``model`` is replaced)."""

    def __init__(self, inner: Frontend) -> None:
        self.inner = inner
        self.operation = inner.operation
        self.translates = inner.translates
        self.headers = inner.headers
        self.max_body = inner.max_body
        self.batches = False
        if type(inner).content_type is not Frontend.content_type:
            self.content_type = inner.content_type  # type: ignore[method-assign]

    def context(self, incoming: Incoming) -> RequestContext:
        deployment = deployment_of(incoming.path)
        if isinstance(self.inner, TranscriptionFrontend):
            return self.inner.context(incoming, model=deployment)
        body = load_json(incoming.raw)
        if not isinstance(body, dict):
            raise invalid_request("the request body must be a JSON object")
        body["model"] = deployment
        incoming.raw = orjson.dumps(body)
        return self.inner.context(incoming)

    async def prepare(self, ctx: RequestContext) -> None:
        await self.inner.prepare(ctx)

    async def encode(self, ctx: RequestContext, body: bytes) -> tuple[bytes, bool]:
        return await self.inner.encode(ctx, body)
