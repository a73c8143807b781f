"""The Responses API passed through to an upstream that speaks it (OpenAI, Azure, Ollama >= 0.13.3).

The ``/v1/responses`` frontend puts the client's request, with any stored conversation already
expanded into ``input``, in ``ctx.native``; the gateway body beside it is the same
request translated to chat, for upstreams that speak only chat. An adapter calls these helpers when
``speaks_responses`` says the deployment takes the Responses API itself. The proxy keeps the stored
conversation, so the upstream is always asked with ``store: false``. Events are relayed as they come;
only the final ``response.*`` event is parsed, for usage.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping

import aiohttp
import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONValue
from proxyllm.core.types import Usage
from proxyllm.core.upstream_http import UpstreamHTTP, iter_lines

API = "responses"  # ctx.native.api of a request that came in through /v1/responses
SUPPORTS_FLAG = "supports_responses"
TERMINAL = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')


def speaks_responses(dep: Deployment, *, default: bool) -> bool:
    """``supports_responses`` from the deployment's model_info or litellm_params, else ``default``."""
    flag = dep.model_info.get(SUPPORTS_FLAG)
    return flag is True if isinstance(flag, bool) else default


def wants_native(dep: Deployment, ctx: RequestContext, *, default: bool) -> bool:
    return is_native(ctx) and speaks_responses(dep, default=default)


def is_native(ctx: RequestContext) -> bool:
    return ctx.native is not None and ctx.native.api == API


def native_body(dep: Deployment, ctx: RequestContext, *, stream: bool) -> bytes:
    assert ctx.native is not None
    request = ctx.native.body
    payload = {**request, "model": dep.upstream_model, "stream": stream, "store": False}
    cap = ctx.body.get("max_tokens")  # the admission step's cap, when money is reserved (core/admission.py)
    if payload.get("max_output_tokens") is None and type(cap) is int:
        payload["max_output_tokens"] = cap
    return orjson.dumps(payload)


def usage_of(response: JSONValue) -> Usage | None:
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion)


async def native_complete(
    http: UpstreamHTTP,
    dep: Deployment,
    ctx: RequestContext,
    *,
    url: str,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    on_error: Callable[[int, bytes, Mapping[str, str]], ProxyError],
) -> bytes:
    raw = await http.request(
        "POST",
        url,
        body=native_body(dep, ctx, stream=False),
        headers=headers,
        timeout=timeout,
        proxy=dep.proxy_url,
        on_error=on_error,
    )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "upstream returned a body that is not JSON") from None
    if not isinstance(data, dict) or data.get("object") != "response":
        raise ProxyError(ErrorKind.UPSTREAM, "upstream did not answer with a Responses API response")
    ctx.usage = usage_of(data)
    return raw


async def native_stream(
    http: UpstreamHTTP,
    dep: Deployment,
    ctx: RequestContext,
    *,
    url: str,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    on_error: Callable[[int, bytes, Mapping[str, str]], ProxyError],
) -> AsyncGenerator[bytes, None]:
    """Yield the upstream's events (``event: ...\\ndata: ...\\n\\n``) up to the final ``response.*`` one."""
    async with http.stream(
        url,
        body=native_body(dep, ctx, stream=True),
        headers=headers,
        timeout=timeout,
        proxy=dep.proxy_url,
        on_error=on_error,
    ) as resp:
        lines: list[bytes] = []
        data = b""
        async for line in iter_lines(resp):
            line = line.rstrip(b"\r\n")
            if line:
                lines.append(line)
                if line.startswith(b"data:"):
                    data = line[5:].strip()
                continue
            if not data:
                lines.clear()
                continue
            event, payload = b"\n".join(lines) + b"\n\n", data
            lines.clear()
            data = b""
            if payload.startswith(b'{"type":"error"') or payload.startswith(b'{"error"'):
                raise _error(payload)
            ctx.output_chunks += 1
            if any(marker in payload for marker in TERMINAL):
                parsed = orjson.loads(payload)
                if isinstance(parsed, dict) and str(parsed.get("type", "")) in {
                    "response.completed",
                    "response.incomplete",
                    "response.failed",
                }:
                    ctx.usage = usage_of(parsed.get("response"))
                    yield event
                    return
            yield event
    raise ProxyError(ErrorKind.UPSTREAM_CONNECT, "upstream Responses stream ended before its final event")


def _error(payload: bytes) -> ProxyError:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = {}
    inner = data.get("error") if isinstance(data, dict) else None
    source = inner if isinstance(inner, dict) else data if isinstance(data, dict) else {}
    message = source.get("message") or "unknown error"
    return ProxyError(ErrorKind.UPSTREAM, f"upstream error mid-stream: {message}")
