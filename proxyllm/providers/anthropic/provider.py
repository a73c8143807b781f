"""Anthropic I/O: ``anthropic/<model>`` on the Messages API, translated to and from OpenAI chat."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.provider import Provider, register
from proxyllm.core.types import CHAT_SHAPED, Operation
from proxyllm.core.upstream_http import JSON_HEADERS, client_timeout, iter_lines
from proxyllm.providers.anthropic import errors
from proxyllm.providers.anthropic.common import API_VERSION, DEFAULT_MAX_TOKENS, usage_of
from proxyllm.providers.anthropic.passthrough import NativeStream
from proxyllm.providers.anthropic.request import is_json_mode, messages_request
from proxyllm.providers.anthropic.response import chat_response
from proxyllm.providers.anthropic.stream import StreamTranslator
from proxyllm.providers.sse import ChunkEncoder, usage_event

DONE = b"data: [DONE]\n\n"
# Set by the /v1/messages endpoint: the client's own Anthropic request and beta header.
API = "anthropic"  # ctx.native.api of a request that came in through /v1/messages


def _json(raw: bytes) -> JSONObject:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "Anthropic returned a body that is not JSON") from None
    if not isinstance(data, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "Anthropic returned an unexpected JSON value")
    return data


def messages_url(api_base: str, path: str = "/v1/messages") -> str:
    base = api_base.removesuffix("/v1/messages").removesuffix("/v1")
    return base + path


def default_max_tokens(dep: Deployment) -> int:
    for key in ("max_output_tokens", "max_tokens"):
        value = dep.model_info.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_MAX_TOKENS


@register("anthropic")
class AnthropicProvider(Provider):
    name = "anthropic"
    default_api_base = "https://api.anthropic.com"
    api_key_env = "ANTHROPIC_API_KEY"
    api_base_env = "ANTHROPIC_API_BASE"
    operations = frozenset({Operation.CHAT, Operation.RESPONSES, Operation.COUNT_TOKENS})

    def headers(self, dep: Deployment, ctx: RequestContext | None = None) -> dict[str, str]:
        headers = {**JSON_HEADERS, "anthropic-version": API_VERSION}
        if dep.api_key:
            headers["x-api-key"] = dep.api_key
        beta = ctx.native.beta if ctx is not None and ctx.native is not None else None
        if isinstance(beta, str) and beta:
            headers["anthropic-beta"] = beta
        headers.update(dep.extra_headers)
        return headers

    def payload(self, dep: Deployment, ctx: RequestContext, *, stream: bool) -> JSONObject:
        """The Messages request: the client's own when it came in through /v1/messages, else translated.

        The native request keeps what the OpenAI form cannot carry (cache_control, documents,
        thinking signatures, server tools); only the model and the stream flag are replaced.
        """
        native = ctx.native
        if native is not None and native.api == API:
            req = {**native.body, "model": dep.upstream_model, "stream": stream}
            req.setdefault("max_tokens", ctx.body.get("max_tokens") or default_max_tokens(dep))
            if not stream:
                del req["stream"]
            return req
        body = {**dep.request_defaults, **ctx.body} if dep.request_defaults else ctx.body
        drop = ctx.drop_params or bool(dep.drop_params)
        return messages_request(
            body, dep.upstream_model, drop=drop, stream=stream, default_max_tokens=default_max_tokens(dep)
        )

    @staticmethod
    def native_answer(ctx: RequestContext) -> bool:
        """True when the client speaks Anthropic's format too (``/v1/messages``): its answer is relayed as is."""
        return ctx.operation is Operation.CHAT and ctx.native is not None and ctx.native.api == API

    def _json_mode(self, ctx: RequestContext) -> bool:
        return (ctx.native is None or ctx.native.api != API) and is_json_mode(ctx.body)

    async def complete(self, dep: Deployment, ctx: RequestContext) -> bytes:
        if ctx.operation is Operation.COUNT_TOKENS:
            native = ctx.native
            if native is None or native.api != API:
                raise self.unsupported(dep, ctx)
            return await self.count_tokens(dep, native.body, native.beta)
        if ctx.operation not in CHAT_SHAPED:
            raise self.unsupported(dep, ctx)
        raw = await self.http.request(
            "POST",
            messages_url(dep.api_base),
            body=orjson.dumps(self.payload(dep, ctx, stream=False)),
            headers=self.headers(dep, ctx),
            timeout=self.call_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        )
        data = _json(raw)
        if data.get("type") == "error":
            raise errors.error_from_body(data, status=None)
        if self.native_answer(ctx):
            ctx.usage = usage_of(data.get("usage"))
            return raw
        response = chat_response(data, model=ctx.model, created=int(ctx.started_wall), json_mode=self._json_mode(ctx))
        ctx.usage = usage_of(data.get("usage"))
        return orjson.dumps(response)

    async def stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        if ctx.operation not in CHAT_SHAPED:
            raise self.unsupported(dep, ctx)
        if self.native_answer(ctx):
            async for event in self._native_stream(dep, ctx):
                yield event
            return
        encoder = ChunkEncoder(
            response_id=f"chatcmpl-{ctx.request_id}",
            model=ctx.model,
            created=int(ctx.started_wall),
            object_name="chat.completion.chunk",
        )
        translator = StreamTranslator(encoder, json_mode=self._json_mode(ctx))
        async with self.http.stream(
            messages_url(dep.api_base),
            body=orjson.dumps(self.payload(dep, ctx, stream=True)),
            headers=self.headers(dep, ctx),
            timeout=self.stream_connect_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        ) as resp:
            async for line in iter_lines(resp):
                if not line.startswith(b"data:"):
                    continue  # event names, blank separators
                for event in translator.feed(_json(line[5:])):
                    ctx.output_chunks += 1
                    yield event
                if translator.done:
                    ctx.usage = translator.usage
                    if ctx.client_wants_usage:
                        yield usage_event(ctx, translator.openai_usage())
                    yield DONE
                    return
        raise ProxyError(ErrorKind.UPSTREAM_CONNECT, "Anthropic stream ended before message_stop")

    async def _native_stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        """Anthropic's events, byte for byte, for an Anthropic client (see ``passthrough.py``)."""
        native = NativeStream()
        async with self.http.stream(
            messages_url(dep.api_base),
            body=orjson.dumps(self.payload(dep, ctx, stream=True)),
            headers=self.headers(dep, ctx),
            timeout=self.stream_connect_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        ) as resp:
            async for line in iter_lines(resp):
                for event in native.feed(line):
                    ctx.output_chunks += 1
                    yield event
                if native.done:
                    ctx.usage = native.usage
                    return
            for event in native.tail():
                yield event
            if native.done:
                ctx.usage = native.usage
                return
        raise ProxyError(ErrorKind.UPSTREAM_CONNECT, "Anthropic stream ended before message_stop")

    async def count_tokens(self, dep: Deployment, request: JSONObject, beta: str | None = None) -> bytes:
        """Ask Anthropic to count the input tokens of a Messages request."""
        body = {k: v for k, v in request.items() if k not in ("max_tokens", "stream", "temperature")}
        body["model"] = dep.upstream_model
        headers = self.headers(dep)
        if beta:
            headers["anthropic-beta"] = beta
        return await self.http.request(
            "POST",
            messages_url(dep.api_base, "/v1/messages/count_tokens"),
            body=orjson.dumps(body),
            headers=headers,
            timeout=client_timeout(30, dep.connect_timeout),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        )

    async def list_models(self, api_base: str, api_key: str | None) -> list[str]:
        headers = {"anthropic-version": API_VERSION, **({"x-api-key": api_key} if api_key else {})}
        raw = await self.http.request(
            "GET", messages_url(api_base, "/v1/models"), headers=headers, timeout=client_timeout(10, 5)
        )
        models = _json(raw).get("data") or []
        return [m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]

    async def check_health(self, dep: Deployment) -> None:
        await self.list_models(dep.api_base, dep.api_key)

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
        return errors.map_error(status, raw, headers)
