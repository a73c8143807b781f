"""The wire helpers shared by adapters that build OpenAI stream events themselves (Ollama, Anthropic,
Gemini): the chunk encoder and the final usage event."""

from __future__ import annotations

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Usage


def usage_event(ctx: RequestContext, usage: JSONObject) -> bytes:
    """The final usage-only chunk (``choices: []``) sent when the client asked for ``include_usage``."""
    chunk = {
        "id": f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion.chunk",
        "created": int(ctx.started_wall),
        "model": ctx.model,
        "choices": [],
        "usage": usage,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


class ChunkEncoder:
    """Encodes OpenAI stream chunks as SSE events, reusing the fixed prefix of every chunk."""

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, *, response_id: str, model: str, created: int, object_name: str) -> None:
        head = orjson.dumps({"id": response_id, "object": object_name, "created": created, "model": model})
        self._prefix = b"data: " + head[:-1] + b',"choices":['
        self._suffix = b"]}\n\n"

    def choice(self, choice: JSONObject) -> bytes:
        return self._prefix + orjson.dumps(choice) + self._suffix

    def usage(self, usage: Usage) -> bytes:
        return self._prefix + b'],"usage":' + orjson.dumps(usage.as_openai()) + b"}\n\n"
