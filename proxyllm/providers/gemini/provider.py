"""Gemini I/O (Google AI Studio): ``gemini/<model>`` on ``generateContent`` and friends."""

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
from proxyllm.providers.gemini import embed, errors
from proxyllm.providers.gemini.request import generate_request
from proxyllm.providers.gemini.response import StreamTranslator, chat_response, openai_usage, usage_of
from proxyllm.providers.sse import ChunkEncoder, usage_event

DONE = b"data: [DONE]\n\n"


def _json(raw: bytes) -> JSONObject:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "Gemini returned a body that is not JSON") from None
    if not isinstance(data, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "Gemini returned an unexpected JSON value")
    return data


def api_root(api_base: str) -> str:
    """``https://generativelanguage.googleapis.com`` -> ``.../v1beta``; a base naming its version is kept."""
    return api_base if api_base.endswith(("/v1beta", "/v1", "/v1alpha")) else api_base + "/v1beta"


def model_url(dep: Deployment, method: str) -> str:
    return f"{api_root(dep.api_base)}/models/{dep.upstream_model.removeprefix('models/')}:{method}"


@register("gemini")
class GeminiProvider(Provider):
    name = "gemini"
    default_api_base = "https://generativelanguage.googleapis.com"
    api_key_env = "GEMINI_API_KEY"
    api_base_env = "GEMINI_API_BASE"
    operations = frozenset({Operation.CHAT, Operation.RESPONSES, Operation.EMBEDDING})

    @staticmethod
    def headers(dep: Deployment) -> dict[str, str]:
        headers = dict(JSON_HEADERS)
        if dep.api_key:
            headers["x-goog-api-key"] = dep.api_key
        headers.update(dep.extra_headers)
        return headers

    @staticmethod
    def _body(dep: Deployment, ctx: RequestContext) -> JSONObject:
        return {**dep.request_defaults, **ctx.body} if dep.request_defaults else ctx.body

    @staticmethod
    def _drop(dep: Deployment, ctx: RequestContext) -> bool:
        return ctx.drop_params or bool(dep.drop_params)

    async def _post(self, dep: Deployment, ctx: RequestContext, method: str, payload: JSONObject) -> JSONObject:
        raw = await self.http.request(
            "POST",
            model_url(dep, method),
            body=orjson.dumps(payload),
            headers=self.headers(dep),
            timeout=self.call_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        )
        return _json(raw)

    async def complete(self, dep: Deployment, ctx: RequestContext) -> bytes:
        if ctx.operation is Operation.EMBEDDING:
            return await self._embed(dep, ctx)
        if ctx.operation not in CHAT_SHAPED:
            raise self.unsupported(dep, ctx)
        payload = generate_request(self._body(dep, ctx), dep.upstream_model, drop=self._drop(dep, ctx))
        data = await self._post(dep, ctx, "generateContent", payload)
        response = chat_response(
            data, model=ctx.model, response_id=f"chatcmpl-{ctx.request_id}", created=int(ctx.started_wall)
        )
        ctx.usage = usage_of(data)
        return orjson.dumps(response)

    async def _embed(self, dep: Deployment, ctx: RequestContext) -> bytes:
        body = self._body(dep, ctx)
        method, payload = embed.embed_request(body, dep.upstream_model, drop=self._drop(dep, ctx))
        data = await self._post(dep, ctx, method, payload)
        ctx.usage = embed.estimate_usage(embed.texts_of(body))
        fmt = body.get("encoding_format")
        return orjson.dumps(embed.embed_response(data, model=ctx.model, encoding_format=fmt, usage=ctx.usage))

    async def stream(self, dep: Deployment, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        if ctx.operation not in CHAT_SHAPED:
            raise self.unsupported(dep, ctx)
        payload = generate_request(self._body(dep, ctx), dep.upstream_model, drop=self._drop(dep, ctx))
        encoder = ChunkEncoder(
            response_id=f"chatcmpl-{ctx.request_id}",
            model=ctx.model,
            created=int(ctx.started_wall),
            object_name="chat.completion.chunk",
        )
        translator = StreamTranslator(encoder)
        async with self.http.stream(
            model_url(dep, "streamGenerateContent") + "?alt=sse",
            body=orjson.dumps(payload),
            headers=self.headers(dep),
            timeout=self.stream_connect_timeout(dep, ctx),
            proxy=dep.proxy_url,
            on_error=self.map_error,
        ) as resp:
            async for line in iter_lines(resp):
                if not line.startswith(b"data:"):
                    continue
                for event in translator.feed(_json(line[5:])):
                    ctx.output_chunks += 1
                    yield event
        if not translator.finished:
            raise ProxyError(ErrorKind.UPSTREAM_CONNECT, "Gemini stream ended before a finishReason")
        ctx.usage = translator.usage
        if ctx.client_wants_usage:
            yield usage_event(ctx, openai_usage(translator.last))
        yield DONE

    async def list_models(self, api_base: str, api_key: str | None) -> list[str]:
        headers = {"x-goog-api-key": api_key} if api_key else {}
        raw = await self.http.request(
            "GET", f"{api_root(api_base)}/models?pageSize=1000", headers=headers, timeout=client_timeout(10, 5)
        )
        models = _json(raw).get("models") or []
        names = (m.get("name") for m in models if isinstance(m, dict))
        return [n.removeprefix("models/") for n in names if isinstance(n, str)]

    async def check_health(self, dep: Deployment) -> None:
        names = await self.list_models(dep.api_base, dep.api_key)
        if dep.upstream_model.removeprefix("models/") not in names:
            raise ProxyError(ErrorKind.NOT_FOUND, f"Gemini does not list model '{dep.upstream_model}'")

    def map_error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProxyError:
        return errors.map_error(status, raw, headers)
