"""Ollama's own API passed through to an Ollama upstream (the proxy's ``/api/*`` endpoints).

The ``/api/chat``, ``/api/generate``, ``/api/embed`` and ``/api/embeddings`` frontends put the
client's checked request in ``ctx.native`` (api ``ollama``, with its path); the gateway body beside it is the same
request translated to OpenAI, for every other upstream (and for limits, the cache key and cost
estimates). An Ollama deployment sends the client's own request with two changes only: the model
becomes the deployment's upstream model, and ``options.num_predict`` carries the admission step's
output cap when money is reserved. Answers are relayed as they come, with the model name put back to
the one the client asked for; only the final line (``"done":true``) is parsed, for usage.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

import aiohttp
import orjson

from proxyllm.core.context import NativeRequest, RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.pricing import estimate_prompt_tokens
from proxyllm.core.types import Usage
from proxyllm.core.upstream_http import iter_line_batches
from proxyllm.providers.ollama.chat import usage_of

API = "ollama"  # ctx.native.api of a request that came in through Ollama's API
GENERATING = frozenset({"/api/chat", "/api/generate"})
DONE_MARKERS = (b'"done":true', b'"done": true')


def native_of(ctx: RequestContext) -> NativeRequest | None:
    """The Ollama client's own request (its ``path`` is /api/chat, /api/generate, /api/embed or
    /api/embeddings), or None when the request came in through another API."""
    native = ctx.native
    return native if native is not None and native.api == API and native.path is not None else None


def url(dep: Deployment, native: NativeRequest) -> str:
    assert native.path is not None  # native_of gives only requests that carry their path
    return dep.api_base + native.path


def native_payload(native: NativeRequest, dep: Deployment, ctx: RequestContext, *, stream: bool) -> bytes:
    payload = {**native.body, "model": dep.upstream_model}
    if native.path in GENERATING:
        payload["stream"] = stream
        cap = ctx.body.get("max_tokens")  # the client's num_predict, or the admission step's cap
        if type(cap) is int:
            payload["options"] = {**(payload.get("options") or {}), "num_predict": cap}
    return orjson.dumps(payload)


def renamer(upstream: str, client: str) -> Callable[[bytes], bytes] | None:
    """Puts the client's model name in place of the upstream's in an answer (None when they are the same)."""
    if upstream == client:
        return None
    old, new = orjson.dumps(upstream), orjson.dumps(client)
    compact, spaced = b'"model":' + old, b'"model": ' + old  # Ollama writes compact JSON; others may not

    def rename(raw: bytes) -> bytes:
        if compact in raw:
            return raw.replace(compact, b'"model":' + new, 1)
        return raw.replace(spaced, b'"model": ' + new, 1)

    return rename


def parse_line(raw: bytes) -> JSONObject:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "Ollama returned a line that is not JSON") from None
    if not isinstance(data, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "Ollama returned an unexpected JSON value")
    if "error" in data:
        raise ProxyError(ErrorKind.UPSTREAM, f"Ollama error: {data['error']}")
    return data


def native_usage(native: NativeRequest, ctx: RequestContext, data: JSONObject) -> Usage:
    usage = usage_of(data)
    if native.path == "/api/embeddings" and not usage.prompt_tokens:  # the old form reports no counts
        return Usage(estimate_prompt_tokens(ctx.body), 0, estimated=True)
    if native.path in ("/api/embed", "/api/embeddings"):
        usage.completion_tokens = 0
    return usage


def complete_answer(native: NativeRequest, dep: Deployment, ctx: RequestContext, raw: bytes) -> bytes:
    """A whole answer: usage read, the model name put back."""
    ctx.usage = native_usage(native, ctx, parse_line(raw))
    rename = renamer(dep.upstream_model, ctx.model)
    return rename(raw) if rename is not None else raw


async def relay_lines(
    native: NativeRequest, dep: Deployment, ctx: RequestContext, resp: aiohttp.ClientResponse
) -> AsyncGenerator[bytes, None]:
    """The upstream's NDJSON lines, a network read's worth at a time, up to the final one."""
    rename = renamer(dep.upstream_model, ctx.model)
    async for lines in iter_line_batches(resp):
        out: list[bytes] = []
        for line in lines:
            if not line.strip():
                continue
            if line.startswith(b'{"error"'):
                if out:
                    yield b"".join(out)
                parse_line(line)  # raises the upstream's error
            if rename is not None:
                line = rename(line)
            ctx.output_chunks += 1
            out.append(line + b"\n")
            if any(marker in line for marker in DONE_MARKERS):
                ctx.usage = native_usage(native, ctx, parse_line(line))
                yield b"".join(out)
                return
        if out:
            yield b"".join(out)
    raise ProxyError(ErrorKind.UPSTREAM_CONNECT, "Ollama stream ended before its final line")
