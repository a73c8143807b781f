"""Small helpers for adapters that build OpenAI stream events themselves."""

from __future__ import annotations

from typing import Any

import orjson

from proxyllm.core.context import RequestContext


def usage_event(ctx: RequestContext, usage: dict[str, Any]) -> bytes:
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
