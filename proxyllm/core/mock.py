"""LiteLLM's ``mock_response``: answer with the given text, in the call's own format, without an upstream.

Used to test clients and budgets end to end. The answer goes through every hook like a real one (keys,
limits, budgets, spend logs); its usage is counted by the proxy (marked estimated) and priced at the
model group's first deployment, as LiteLLM prices mock calls.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Operation, Usage

MAX_MOCK_CHARS = 100_000


def _usage(ctx: RequestContext, text: str) -> Usage:
    from proxyllm.core.pricing import estimate_prompt_tokens

    return Usage(estimate_prompt_tokens(ctx.body), max(1, len(text) // 4), estimated=True)


def mock_body(ctx: RequestContext, text: str) -> bytes:
    ctx.usage = usage = _usage(ctx, text)
    base: JSONObject = {"id": f"chatcmpl-mock-{ctx.request_id}", "created": int(time.time()), "model": ctx.model}
    if ctx.operation is Operation.COMPLETION:
        choice: JSONObject = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        return orjson.dumps({**base, "object": "text_completion", "choices": [choice], "usage": usage.as_openai()})
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return orjson.dumps({**base, "object": "chat.completion", "choices": [choice], "usage": usage.as_openai()})


async def mock_stream(ctx: RequestContext, text: str) -> AsyncGenerator[bytes, None]:
    ctx.usage = usage = _usage(ctx, text)
    base = {
        "id": f"chatcmpl-mock-{ctx.request_id}",
        "created": int(time.time()),
        "model": ctx.model,
        "object": "chat.completion.chunk",
    }
    words = text.split(" ")
    for i, word in enumerate(words):
        delta: JSONObject = {"content": word if i == 0 else " " + word}
        if i == 0:
            delta["role"] = "assistant"
        yield (
            b"data: "
            + orjson.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            + b"\n\n"
        )
        ctx.output_chunks += 1
    final: JSONObject = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield b"data: " + orjson.dumps(final) + b"\n\n"
    if ctx.client_wants_usage:
        yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage.as_openai()}) + b"\n\n"
    yield b"data: [DONE]\n\n"
