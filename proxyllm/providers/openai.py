"""OpenAI and any OpenAI-compatible server (vLLM, LM Studio, llama.cpp, ...).

The hot path: the client's body goes out with only ``model`` changed, and the upstream's bytes come
back unchanged. Streams are relayed event by event; the proxy parses only the usage chunk it asked for.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.provider import Provider, register
from proxyllm.core.types import MEDIA, Operation, Usage
from proxyllm.core.upstream_http import bearer_headers, iter_line_batches
from proxyllm.providers.media import MEDIA_PATHS, media_complete
from proxyllm.providers.openai_errors import openai_error
from proxyllm.providers.responses import is_native, native_complete, native_stream, speaks_responses

PATHS = {
    Operation.CHAT: "/chat/completions",
    Operation.COMPLETION: "/completions",
    Operation.EMBEDDING: "/embeddings",
    Operation.RESPONSES: "/responses",  # only for deployments that speak it (else translated to chat)
    **MEDIA_PATHS,
}
DONE = b"data: [DONE]\n\n"


def upstream_body(dep: Deployment, ctx: RequestContext, *, stream: bool = False) -> bytes:
    body = ctx.body
    payload: JSONObject = {**dep.request_defaults, **body} if dep.request_defaults else dict(body)
    payload["model"] = dep.upstream_model
    if stream and not ctx.client_wants_usage:
        # Ask for usage so the request can be costed; the extra chunk is not passed to the client.
        payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return orjson.dumps(payload)


def usage_of(raw: bytes) -> Usage | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "upstream returned a body that is not JSON") from None
    return Usage.from_openai(data.get("usage")) if isinstance(data, dict) else None


@register("openai", "openai_compatible", "custom_openai", "text-completion-openai")
class OpenAIProvider(Provider):
    name = "openai"
    default_api_base = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"
    api_base_env = "OPENAI_API_BASE"
    operations = frozenset(Operation)  # images, moderations, audio and rerank too (providers/media.py)

    def headers(self, dep: Deployment) -> dict[str, str]:
        return bearer_headers(dep.api_key, dep.extra_headers)

    def speaks_responses(self, dep: Deployment) -> bool:
        """OpenAI itself does; an OpenAI-compatible server only when its deployment says so."""
        return speaks_responses(dep, default=dep.api_base == self.default_api_base)

    def path_operation(self, dep: Deployment, ctx: RequestContext) -> Operation:
        """The upstream endpoint to call: a Responses request goes to chat unless the upstream speaks it."""
        if ctx.operation is Operation.RESPONSES and not (is_native(ctx) and self.speaks_responses(dep)):
            return Operation.CHAT
        return ctx.operation

    def url(self, dep: Deployment, operation: Operation) -> str:
        return dep.api_base + PATHS[operation]

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
        # Context-window and content-policy errors get their own kinds (and fallbacks).
        return openai_error(status, raw, headers)

    def body(self, dep: Deployment, ctx: RequestContext, *, stream: bool = False) -> bytes:
        """The upstream request; OpenAI-compatible clouds override it to refuse or drop parameters."""
        return upstream_body(dep, ctx, stream=stream)

    async def complete(self, dep: Deployment, ctx: RequestContext) -> bytes:
        if ctx.operation in MEDIA:
            return await media_complete(self, dep, ctx)
        operation = self.path_operation(dep, ctx)
        if operation is Operation.RESPONSES:
            return await native_complete(
                self.http,
                dep,
                ctx,
                url=self.url(dep, operation),
                headers=self.headers(dep),
                timeout=self.call_timeout(dep, ctx),
                on_error=self.map_error,
            )
        raw = await self.http.request(
            "POST",
            self.url(dep, operation),
            body=self.body(dep, ctx),
            headers=self.headers(dep),
            timeout=self.call_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        )
        ctx.usage = usage_of(raw)
        return raw

    def stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        operation = self.path_operation(dep, ctx)
        if operation is Operation.RESPONSES:
            return native_stream(
                self.http,
                dep,
                ctx,
                url=self.url(dep, operation),
                headers=self.headers(dep),
                timeout=self.stream_connect_timeout(dep, ctx),
                on_error=self.map_error,
            )
        return self._stream(dep, ctx, operation)

    async def _stream(self, dep: Deployment, ctx: RequestContext, operation: Operation) -> AsyncGenerator[bytes, None]:
        strip_usage = not ctx.client_wants_usage
        async with self.http.stream(
            self.url(dep, operation),
            body=self.body(dep, ctx, stream=True),
            headers=self.headers(dep),
            timeout=self.stream_connect_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        ) as resp:
            async for lines in iter_line_batches(resp):
                out: list[bytes] = []
                for line in lines:
                    if not line.startswith(b"data:"):
                        continue  # blank separators, comments, event names
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        out.append(DONE)
                        yield b"".join(out)
                        return
                    if data.startswith(b'{"error"'):
                        if out:
                            yield b"".join(out)
                        raise stream_error(data)
                    if b'"usage":{' in data or b'"usage": {' in data:
                        chunk = orjson.loads(data)
                        ctx.usage = Usage.from_openai(chunk.get("usage"))
                        if strip_usage and not chunk.get("choices"):
                            continue
                    ctx.output_chunks += 1
                    out.append(b"data: " + data + b"\n\n")
                if out:
                    yield b"".join(out)
        raise ProxyError(ErrorKind.UPSTREAM_CONNECT, "upstream stream ended without [DONE]")

    async def list_models(self, api_base: str, api_key: str | None) -> list[str]:
        from proxyllm.core.upstream_http import client_timeout

        raw = await self.http.request(
            "GET", api_base + "/models", headers=bearer_headers(api_key), timeout=client_timeout(10, 5)
        )
        data = orjson.loads(raw).get("data") or []
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def check_health(self, dep: Deployment) -> None:
        models = await self.list_models(dep.api_base, dep.api_key)
        if models and dep.upstream_model not in models:
            raise ProxyError(ErrorKind.NOT_FOUND, f"upstream does not list model '{dep.upstream_model}'")


def stream_error(data: bytes) -> ProxyError:
    try:
        err = orjson.loads(data).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        err = None
    message = err.get("message") if isinstance(err, dict) else err
    return ProxyError(ErrorKind.UPSTREAM, f"upstream error mid-stream: {message or 'unknown error'}")
