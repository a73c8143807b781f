"""LiteLLM's batch completion on the proxy: ``"model": "gpt-4o,llama3"`` asks every model at once.

The answer is a JSON list with one entry per model, in the order given: the model's response, or its
error in OpenAI's shape (``{"error": {...}}``) when that model failed. Each model's call is a gateway
call of its own — authenticated, admitted, limited, budgeted, billed and logged like any request, with
its own request id — so a key that may not use one of the models gets that model's 401 in its entry.
With ``"fastest_response": true`` (LiteLLM's flag) the first successful response is the answer.
Streaming is not offered for a batch.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import orjson
from starlette.types import Send

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ProxyError, invalid_request
from proxyllm.core.gateway import Gateway, internal_error
from proxyllm.frontends.base import Frontend, Incoming

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

MAX_BATCH_MODELS = 10


def batch_models(model: str) -> list[str]:
    names = [name.strip() for name in model.split(",")]
    if not all(names):
        raise invalid_request("'model' lists an empty model name between commas", param="model")
    if len(names) > MAX_BATCH_MODELS:
        raise invalid_request(f"a batch may ask at most {MAX_BATCH_MODELS} models at once", param="model")
    return names


async def run_batch(gateway: Gateway, frontend: Frontend, incoming: Incoming, ctx: RequestContext, send: Send) -> None:
    """Answer a comma-separated ``model`` with every model's answer (see the module's docstring)."""
    from proxyllm.frontends.endpoint import request_headers, send_bytes

    if ctx.stream:
        raise invalid_request("a comma-separated 'model' (batch completion) cannot be streamed", param="stream")
    names = batch_models(ctx.model)
    original = orjson.loads(incoming.raw)
    fastest = original.pop("fastest_response", None) is True
    calls = []
    for name in names:
        sub = Incoming(
            raw=orjson.dumps({**original, "model": name}),
            headers=incoming.headers,
            api_key=incoming.api_key,
            request_id=str(uuid.uuid4()),
            started=incoming.started,
            path=incoming.path,
        )
        one = frontend.context(sub)
        if incoming.headers:
            request_headers(one, incoming.headers)
        calls.append(one)
    if fastest:
        body = await _fastest(gateway, calls)
    else:
        results = await asyncio.gather(*(_one(gateway, one) for one in calls))
        body = b"[" + b",".join(results) + b"]"
    await send_bytes(send, 200, body, [(b"x-litellm-call-id", incoming.request_id.encode())])


async def _one(gateway: Gateway, ctx: RequestContext) -> bytes:
    """One model's answer, or its error's body; its after-hooks run before the batch answers."""
    try:
        result = await gateway.call(ctx)
        if not isinstance(result, bytes):  # cannot happen: streams are refused above
            await _close(result)
            raise internal_error(ctx.request_id)
        return result
    except ProxyError as err:
        return err.body()
    finally:
        if ctx.hooks_ran:
            await gateway.finish(ctx)


async def _close(stream: AsyncGenerator[bytes, None]) -> None:
    await stream.aclose()


async def _fastest(gateway: Gateway, calls: list[RequestContext]) -> bytes:
    """The first successful answer; the others are cancelled (and charged for what they used)."""
    tasks = [asyncio.ensure_future(_one(gateway, one)) for one in calls]
    last = b""
    try:
        for finished in asyncio.as_completed(tasks):
            body = await finished
            if not body.startswith(b'{"error"'):
                return body
            last = body
        return last
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
