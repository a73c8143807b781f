"""``POST /api/chat``, ``/api/generate``, ``/api/embed``, ``/api/embeddings``: Ollama's API in front of any model.

Each request is checked and translated to the gateway's OpenAI body (``request.py``) and runs through
the same gateway call as every endpoint: the key, limits, budgets, prepaid credit, the cache, the
router with its retries and fallbacks, the spend log. The client's own request rides along in
``ctx.native``: an Ollama deployment sends it as it is (``providers/ollama/native.py``)
and its answer comes back bytes-through; any other upstream's answer is translated here. Errors are
Ollama's ``{"error": "..."}`` with the status that fits (400, 401, 404, 429, ...).
"""

from __future__ import annotations

import orjson

from proxyllm.core.context import NativeRequest, RequestContext
from proxyllm.core.errors import ProxyError
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.requests import apply_proxy_fields
from proxyllm.core.types import Operation
from proxyllm.frontends.base import Frontend, Incoming, StreamEncoder
from proxyllm.frontends.ollama import request
from proxyllm.frontends.ollama.answer import chat_answer, embed_answer, load_answer
from proxyllm.frontends.ollama.stream import OllamaStreamEncoder
from proxyllm.providers.ollama.native import API

NDJSON = b"application/x-ndjson"


def ollama_error_body(err: ProxyError) -> bytes:
    return orjson.dumps({"error": err.message})


class _OllamaFrontend(Frontend):
    translates = True
    stream_type = NDJSON
    path = ""

    def error_body(self, err: ProxyError, request_id: str) -> bytes:
        return ollama_error_body(err)

    def _context(self, incoming: Incoming, native: JSONObject, body: JSONObject) -> RequestContext:
        ctx = RequestContext(
            request_id=incoming.request_id, operation=self.operation, body=body, api_key=incoming.api_key
        )
        ctx.started = incoming.started
        ctx.native = NativeRequest(API, native, path=self.path)
        apply_proxy_fields(ctx)
        return ctx

    @staticmethod
    def _native_answer(data: JSONValue) -> bool:
        """An Ollama upstream's own answer (bytes-through, or replayed from the cache), not OpenAI's."""
        return isinstance(data, dict) and "choices" not in data and data.get("object") != "list"


class ChatFrontend(_OllamaFrontend):
    """``/api/chat``, and ``/api/generate`` (``generate=True``) as a chat with one prompt."""

    def __init__(self, *, generate: bool = False) -> None:
        self.generate = generate
        self.path = "/api/generate" if generate else "/api/chat"

    def context(self, incoming: Incoming) -> RequestContext:
        native = request.load_object(incoming.raw)
        proxy_opts = request.split_proxy_fields(native)
        body = request.generate_body(native) if self.generate else request.chat_body(native)
        ctx = self._context(incoming, native, {**body, **proxy_opts})
        if not body["messages"]:  # nothing to generate: Ollama loads the model and says so
            ctx.local_answer = load_answer(ctx.model, generate=self.generate)
        return ctx

    async def encode(self, ctx: RequestContext, body: bytes) -> tuple[bytes, bool]:
        data = orjson.loads(body)
        if not self._native_answer(data):
            body = orjson.dumps(chat_answer(data, ctx, generate=self.generate))
        if ctx.stream:
            return body + b"\n", True
        return body, False

    def stream_encoder(self, ctx: RequestContext) -> StreamEncoder:
        return OllamaStreamEncoder(ctx.model, generate=self.generate)


class EmbedFrontend(_OllamaFrontend):
    """``/api/embed``, and the older ``/api/embeddings`` (``old=True``)."""

    operation = Operation.EMBEDDING

    def __init__(self, *, old: bool = False) -> None:
        self.old = old
        self.path = "/api/embeddings" if old else "/api/embed"

    def context(self, incoming: Incoming) -> RequestContext:
        native = request.load_object(incoming.raw)
        proxy_opts = request.split_proxy_fields(native)
        body = request.embed_body(native, old=self.old)
        native.pop("stream", None)
        return self._context(incoming, native, {**body, **proxy_opts})

    async def encode(self, ctx: RequestContext, body: bytes) -> tuple[bytes, bool]:
        data = orjson.loads(body)
        if self._native_answer(data):
            return body, False
        return orjson.dumps(embed_answer(data, ctx, old=self.old)), False


def ollama_endpoints() -> dict[str, Frontend]:
    return {
        "/api/chat": ChatFrontend(),
        "/api/generate": ChatFrontend(generate=True),
        "/api/embed": EmbedFrontend(),
        "/api/embeddings": EmbedFrontend(old=True),
    }
