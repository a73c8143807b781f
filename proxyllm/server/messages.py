"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's API in front of any model.

A Messages request is translated to an OpenAI chat request and runs through the same gateway call as
``/v1/chat/completions`` (auth, hooks, router retries and fallbacks, cost); the answer — a body or a
stream — is translated back to Anthropic's format, event names included. Anthropic deployments get
the client's own request (see ``providers/anthropic/provider.py``), so nothing is lost on the way out.
Errors are answered in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.gateway import internal_error
from proxyllm.core.requests import PROXY_FIELDS, apply_proxy_fields, timeout_header
from proxyllm.core.types import Operation
from proxyllm.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.providers.anthropic.errors import anthropic_error_body
from proxyllm.providers.anthropic.messages_request import check_request, estimate_input_tokens, openai_request
from proxyllm.providers.anthropic.messages_response import anthropic_message
from proxyllm.providers.anthropic.messages_stream import AnthropicStreamEncoder, message_events
from proxyllm.providers.anthropic.provider import NATIVE_BETA, NATIVE_REQUEST, AnthropicProvider
from proxyllm.server.asgi import STREAM_HEADERS, ClientGone, _Watch, read_body, response_headers, send_bytes
from proxyllm.server.auth import key_from_headers
from proxyllm.server.runtime import Runtime

log = logging.getLogger("proxyllm.http")
Scope = dict[str, Any]
ESTIMATE_HEADER = (b"x-proxyllm-token-count", b"estimate")
# Proxy-only fields taken out of an Anthropic request (``metadata`` is Anthropic's own field there).
NATIVE_PROXY_FIELDS = PROXY_FIELDS - {"metadata"}


def _parse(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise invalid_request("the request body is empty; send a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"the request body is not valid JSON: {exc}") from None
    return check_request(body)


async def send_anthropic_error(send: Any, err: ProxyError, headers: list[tuple[bytes, bytes]], rid: str) -> None:
    for name, value in err.response_headers().items():
        headers.append((name.encode(), value.encode()))
    await send_bytes(send, err.status, anthropic_error_body(err, rid), headers)


class _Base:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def anthropic_only(self, model: str) -> list[Any]:
        """The model's deployments when every one of them is Anthropic, else an empty list."""
        group = self.runtime.router.find(model)
        if group is None or not all(isinstance(d.provider, AnthropicProvider) for d in group.deployments):
            return []
        return list(group.deployments)

    @staticmethod
    def headers_of(scope: Scope) -> tuple[int | None, dict[bytes, str]]:
        declared: int | None = None
        wanted: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else None
            elif name in (b"anthropic-beta", b"x-litellm-timeout"):
                wanted[name] = value.decode("latin-1")
        return declared, wanted


class MessagesEndpoint(_Base):
    """``POST /v1/messages``: plain and streamed, from any configured model."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        declared, wanted = self.headers_of(scope)
        ctx: RequestContext | None = None
        watch = _Watch()
        gateway = self.runtime.gateway
        try:
            raw = await read_body(receive, self.runtime.max_body_bytes, declared)
            native = _parse(raw)
            proxy_opts = {k: native.pop(k) for k in NATIVE_PROXY_FIELDS if k in native}
            body = {**openai_request(native, strict=not self.anthropic_only(native["model"])), **proxy_opts}
            ctx = RequestContext(
                request_id=request_id, operation=Operation.CHAT, body=body, api_key=key_from_headers(scope["headers"])
            )
            ctx.started = started
            ctx.extra[NATIVE_REQUEST] = native
            if b"anthropic-beta" in wanted:
                ctx.extra[NATIVE_BETA] = wanted[b"anthropic-beta"]
            apply_proxy_fields(ctx)
            if b"x-litellm-timeout" in wanted:
                ctx.timeout = timeout_header(wanted[b"x-litellm-timeout"])
            watch.start(receive)
            result = await gateway.call(ctx)
            message_id = "msg_" + request_id.replace("-", "")
            if isinstance(result, bytes):
                watch.stop()
                message = anthropic_message(orjson.loads(result), message_id=message_id, model=native["model"])
                if ctx.stream:
                    await self._send_events(send, ctx, message_events(message))
                else:
                    await send_bytes(send, 200, orjson.dumps(message), response_headers(ctx))
            else:
                encoder = AnthropicStreamEncoder(message_id=message_id, model=native["model"])
                await self._send_stream(send, ctx, result, encoder, watch)
        except ProxyError as err:
            watch.stop()
            headers = response_headers(ctx) if ctx else [(b"x-litellm-call-id", request_id.encode())]
            await send_anthropic_error(send, err, headers, request_id)
        except ClientGone:
            watch.stop()
        except asyncio.CancelledError:
            if not watch.absorb_disconnect(ctx):
                raise
        except Exception:
            watch.stop()
            log.exception("unexpected error in request %s", request_id)
            await send_anthropic_error(send, internal_error(request_id), [], request_id)
        finally:
            watch.stop()
            if ctx is not None and ctx.hooks_ran:
                await gateway.finish(ctx)

    @staticmethod
    async def _send_events(send: Any, ctx: RequestContext, events: list[bytes]) -> None:
        headers = response_headers(ctx) + STREAM_HEADERS
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(events), "more_body": False})

    @staticmethod
    async def _send_stream(
        send: Any,
        ctx: RequestContext,
        events: AsyncGenerator[bytes, None],
        encoder: AnthropicStreamEncoder,
        watch: _Watch,
    ) -> None:
        headers = response_headers(ctx) + STREAM_HEADERS
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for event in events:
                out = encoder.feed(event)
                if out:
                    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
            tail = encoder.finish(ctx.usage.as_openai() if ctx.usage else None)
            watch.stop()
            await send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})
        finally:
            await events.aclose()


class CountTokensEndpoint(_Base):
    """``POST /v1/messages/count_tokens``.

    When the model is served by Anthropic, Anthropic counts (the answer is passed through as is).
    For any other model no upstream can count Anthropic-format input, so the proxy answers with an
    estimate — about four characters a token plus a flat 1,600 tokens per image — and marks it with
    the response header ``x-proxyllm-token-count: estimate`` and ``"estimated": true`` in the body.
    A client that budgets a context window gets a usable figure instead of an error; one that needs
    exact counts can see that this one is not.
    """

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        request_id = str(uuid.uuid4())
        headers = [(b"x-litellm-call-id", request_id.encode())]
        declared, wanted = self.headers_of(scope)
        try:
            raw = await read_body(receive, self.runtime.max_body_bytes, declared)
            principal = await self.runtime.auth.authenticate(key_from_headers(scope["headers"]))
            body = _parse(raw)
            for key in NATIVE_PROXY_FIELDS:
                body.pop(key, None)
            group = self.runtime.router.resolve(body["model"])  # the usual 404 for an unknown model
            auth = getattr(principal, "auth", None)  # a virtual key's model restrictions apply here too
            if auth is not None and not auth.may_use(body["model"], group.name):
                raise ProxyError(
                    ErrorKind.PERMISSION, f"this key may not use model '{body['model']}'", code="model_not_allowed"
                )
            for dep in group.deployments:
                if isinstance(dep.provider, AnthropicProvider):
                    answer = await dep.provider.count_tokens(dep, body, wanted.get(b"anthropic-beta"))
                    await send_bytes(send, 200, answer, headers)
                    return
            openai_request(body, strict=False)  # the same checks a real call would make
            estimate = {"input_tokens": estimate_input_tokens(body), "estimated": True}
            await send_bytes(send, 200, orjson.dumps(estimate), [*headers, ESTIMATE_HEADER])
        except ProxyError as err:
            await send_anthropic_error(send, err, headers, request_id)
        except ClientGone:
            pass
        except Exception:
            log.exception("unexpected error in request %s", request_id)
            await send_anthropic_error(send, internal_error(request_id), headers, request_id)
