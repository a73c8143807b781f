"""Ollama's own API passed through to an Ollama upstream (the proxy's ``/api/*`` endpoints).

The ``/api/chat``, ``/api/generate``, ``/api/embed`` and ``/api/embeddings`` frontends put the
client's checked request in ``ctx.extra[NATIVE_OLLAMA]``; the gateway body beside it is the same
request translated to OpenAI, for every other upstream (and for limits, the cache key and cost
estimates). An Ollama deployment sends the client's own request with two changes only: the model
becomes the deployment's upstream model, and ``options.num_predict`` carries the admission step's
output cap when money is reserved. Answers are relayed as they come, with the model name put back to
the one the client asked for; only the final line (``"done":true``) is parsed, for usage.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.pricing import estimate_prompt_tokens
from proxyllm.core.types import Usage
from proxyllm.errors import ErrorKind, ProxyError
from proxyllm.providers.http import iter_line_batches
from proxyllm.providers.ollama.chat import usage_of

NATIVE_OLLAMA = "ollama_request"
GENERATING = frozenset({"/api/chat", "/api/generate"})
DONE_MARKERS = (b'"done":true', b'"done": true')


@dataclass(slots=True)
class NativeOllama:
    """The client's Ollama request and the path it came in on."""

    path: str  # /api/chat, /api/generate, /api/embed or /api/embeddings
    body: dict[str, Any]


def native_of(ctx: RequestContext) -> NativeOllama | None:
    native = ctx.extra.get(NATIVE_OLLAMA)
    return native if isinstance(native, NativeOllama) else None


def native_payload(native: NativeOllama, dep: Deployment, ctx: RequestContext, *, stream: bool) -> bytes:
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


def parse_line(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "Ollama returned a line that is not JSON") from None
    if not isinstance(data, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "Ollama returned an unexpected JSON value")
    if "error" in data:
        raise ProxyError(ErrorKind.UPSTREAM, f"Ollama error: {data['error']}")
    return data


def native_usage(native: NativeOllama, ctx: RequestContext, data: dict[str, Any]) -> Usage:
    usage = usage_of(data)
    if native.path == "/api/embeddings" and not usage.prompt_tokens:  # the old form reports no counts
        return Usage(estimate_prompt_tokens(ctx.body), 0, estimated=True)
    if native.path in ("/api/embed", "/api/embeddings"):
        usage.completion_tokens = 0
    return usage


def complete_answer(native: NativeOllama, dep: Deployment, ctx: RequestContext, raw: bytes) -> bytes:
    """A whole answer: usage read, the model name put back."""
    ctx.usage = native_usage(native, ctx, parse_line(raw))
    rename = renamer(dep.upstream_model, ctx.model)
    return rename(raw) if rename is not None else raw


async def relay_lines(
    native: NativeOllama, dep: Deployment, ctx: RequestContext, resp: Any
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
