"""Ollama I/O: send translated requests, read JSON or NDJSON, hand back OpenAI bytes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import orjson

from proxyllm.core.context import NativeRequest, RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.provider import Provider, register
from proxyllm.core.types import CHAT_SHAPED, Operation
from proxyllm.core.upstream_http import bearer_headers, client_timeout, default_error, iter_line_batches
from proxyllm.providers.ollama import chat, embed, generate, native
from proxyllm.providers.ollama.forced import forced_tool
from proxyllm.providers.responses import native_complete, native_stream, wants_native
from proxyllm.providers.sse import ChunkEncoder

DONE = b"data: [DONE]\n\n"
# How Ollama says a prompt does not fit the model's context (e.g. with truncate false, or embeddings).
CONTEXT_MARKERS = ("context length", "context window", "prompt too long", "input length exceeds")


def too_long(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in CONTEXT_MARKERS)


def _json(raw: bytes) -> JSONObject:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "Ollama returned a line that is not JSON") from None
    if not isinstance(data, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "Ollama returned an unexpected JSON value")
    if "error" in data:
        message = f"Ollama error: {data['error']}"
        if too_long(message):
            raise ProxyError(ErrorKind.CONTEXT_WINDOW_EXCEEDED, message, code="context_length_exceeded")
        raise ProxyError(ErrorKind.UPSTREAM, message)
    return data


def same_model(a: str, b: str) -> bool:
    return a == b or a.removesuffix(":latest") == b.removesuffix(":latest")


@register("ollama")
class OllamaProvider(Provider):
    """``ollama/<model>``: chat is rendered into a prompt for /api/generate."""

    name = "ollama"
    default_api_base = "http://localhost:11434"
    api_base_env = "OLLAMA_API_BASE"
    api_key_env = "OLLAMA_API_KEY"
    chat_via_generate = True

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
        err = default_error(status, raw, headers)
        if status in (400, 413, 500) and too_long(err.message):
            return ProxyError(ErrorKind.CONTEXT_WINDOW_EXCEEDED, err.message, code="context_length_exceeded")
        return err

    def _translate(self, dep: Deployment, ctx: RequestContext, stream: bool) -> tuple[str, JSONObject]:
        body = {**dep.request_defaults, **ctx.body} if dep.request_defaults else ctx.body
        drop = ctx.drop_params or bool(dep.drop_params)
        model = dep.upstream_model
        if ctx.operation is Operation.EMBEDDING:
            return "/api/embed", embed.embed_request(body, model, drop=drop)
        if ctx.operation is Operation.COMPLETION:
            return "/api/generate", generate.completion_request(body, model, drop=drop, stream=stream)
        if self.chat_via_generate:
            return "/api/generate", generate.chat_as_generate_request(body, model, drop=drop, stream=stream)
        return "/api/chat", chat.chat_request(body, model, drop=drop, stream=stream)

    def _response(self, ctx: RequestContext, data: JSONObject) -> JSONObject:
        created = int(ctx.started_wall)
        if ctx.operation is Operation.EMBEDDING:
            ctx.usage = embed.usage_of(data)
            return embed.embed_response(data, model=ctx.model, encoding_format=ctx.body.get("encoding_format"))
        if ctx.operation is Operation.COMPLETION:
            ctx.usage = generate.usage_of(data)
            return generate.completion_response(
                data, model=ctx.model, response_id=f"cmpl-{ctx.request_id}", created=created
            )
        rid = f"chatcmpl-{ctx.request_id}"
        if self.chat_via_generate:
            ctx.usage = generate.usage_of(data)
            return generate.chat_response(data, model=ctx.model, response_id=rid, created=created)
        ctx.usage = chat.usage_of(data)
        forced = forced_tool(ctx.body)
        return chat.chat_response(data, model=ctx.model, response_id=rid, created=created, forced=forced)

    async def complete(self, dep: Deployment, ctx: RequestContext) -> bytes:
        ollama_request = native.native_of(ctx)
        if ollama_request is not None:  # an Ollama client: its own request, bytes-through
            raw = await self.http.request(
                "POST",
                native.url(dep, ollama_request),
                body=native.native_payload(ollama_request, dep, ctx, stream=False),
                headers=bearer_headers(dep.api_key, dep.extra_headers),
                timeout=self.call_timeout(dep, ctx),
                proxy=dep.proxy_url,
                on_error=self.map_error,
            )
            return native.complete_answer(ollama_request, dep, ctx, raw)
        if wants_native(dep, ctx, default=False):  # Ollama >= 0.13.3 serves /v1/responses (stateless)
            return await native_complete(
                self.http,
                dep,
                ctx,
                url=dep.api_base + "/v1/responses",
                headers=bearer_headers(dep.api_key, dep.extra_headers),
                timeout=self.call_timeout(dep, ctx),
                on_error=self.map_error,
            )
        path, payload = self._translate(dep, ctx, stream=False)
        raw = await self.http.request(
            "POST",
            dep.api_base + path,
            body=orjson.dumps(payload),
            headers=bearer_headers(dep.api_key, dep.extra_headers),
            timeout=self.call_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        )
        return orjson.dumps(self._response(ctx, _json(raw)))

    def stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        ollama_request = native.native_of(ctx)
        if ollama_request is not None:
            return self._native_stream(dep, ctx, ollama_request)
        if wants_native(dep, ctx, default=False):
            return native_stream(
                self.http,
                dep,
                ctx,
                url=dep.api_base + "/v1/responses",
                headers=bearer_headers(dep.api_key, dep.extra_headers),
                timeout=self.stream_connect_timeout(dep, ctx),
                on_error=self.map_error,
            )
        return self._stream(dep, ctx)

    async def _native_stream(
        self, dep: Deployment, ctx: RequestContext, ollama_request: NativeRequest
    ) -> AsyncGenerator[bytes, None]:
        async with self.http.stream(
            native.url(dep, ollama_request),
            body=native.native_payload(ollama_request, dep, ctx, stream=True),
            headers=bearer_headers(dep.api_key, dep.extra_headers),
            timeout=self.stream_connect_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        ) as resp:
            async for lines in native.relay_lines(ollama_request, dep, ctx, resp):
                yield lines

    async def _stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        path, payload = self._translate(dep, ctx, stream=True)
        as_chat = ctx.operation in CHAT_SHAPED
        encoder = ChunkEncoder(
            response_id=f"{'chatcmpl' if as_chat else 'cmpl'}-{ctx.request_id}",
            model=ctx.model,
            created=int(ctx.started_wall),
            object_name="chat.completion.chunk" if as_chat else "text_completion",
        )
        translator: chat.ChatStreamTranslator | generate.GenerateStreamTranslator
        if path == "/api/chat":
            translator = chat.ChatStreamTranslator(encoder, forced_tool(ctx.body))
        else:
            translator = generate.GenerateStreamTranslator(encoder, as_chat=as_chat)
        async with self.http.stream(
            dep.api_base + path,
            body=orjson.dumps(payload),
            headers=bearer_headers(dep.api_key, dep.extra_headers),
            timeout=self.stream_connect_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        ) as resp:
            async for lines in iter_line_batches(resp):
                out: list[bytes] = []
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        data = _json(line)
                    except ProxyError:
                        if out:
                            yield b"".join(out)
                        raise
                    events = translator.feed(data)
                    ctx.output_chunks += len(events)
                    out.extend(events)
                    if data.get("done"):
                        ctx.usage = translator.usage
                        if ctx.client_wants_usage and translator.usage is not None:
                            out.append(encoder.usage(translator.usage))
                        out.append(DONE)
                        yield b"".join(out)
                        return
                if out:
                    yield b"".join(out)
        raise ProxyError(ErrorKind.UPSTREAM_CONNECT, "Ollama stream ended before its final line")

    async def list_models(self, api_base: str, api_key: str | None) -> list[str]:
        raw = await self.http.request(
            "GET", api_base + "/api/tags", headers=bearer_headers(api_key), timeout=client_timeout(10, 5)
        )
        models = _json(raw).get("models") or []
        names = (m.get("name") or m.get("model") for m in models if isinstance(m, dict))
        return [name for name in names if isinstance(name, str)]

    async def check_health(self, dep: Deployment) -> None:
        names = await self.list_models(dep.api_base, dep.api_key)
        if not any(same_model(dep.upstream_model, name) for name in names):
            raise ProxyError(ErrorKind.NOT_FOUND, f"model '{dep.upstream_model}' is not pulled on {dep.api_base}")


@register("ollama_chat")
class OllamaChatProvider(OllamaProvider):
    """``ollama_chat/<model>``: chat goes to /api/chat with tools, images, formats and thinking."""

    name = "ollama_chat"
    chat_via_generate = False
