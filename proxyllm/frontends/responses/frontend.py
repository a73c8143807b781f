"""``POST /v1/responses``: the OpenAI Responses API in front of every model.

The request is checked and normalised (``request.py``); with ``previous_response_id`` the stored
conversation of that response (of the same key) is put in front of the new input. The gateway call
carries the conversation twice: as a chat body (``ctx.body``, what limits, the cache and chat-only
upstreams see) and as the Responses request itself (``ctx.native``, for upstreams
that speak Responses). The answer comes back as a chat completion, translated here, or as a Response
passed through. With ``store`` (the default) the response is saved before its last byte is sent.
"""

from __future__ import annotations

import logging

import orjson

from proxyllm.accounts.auth import Authenticator
from proxyllm.core.context import NativeRequest, RequestContext, Slot
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.pricing import estimate_prompt_tokens
from proxyllm.core.requests import PROXY_FIELDS, apply_proxy_fields, load_json
from proxyllm.core.router import Router
from proxyllm.core.types import Operation
from proxyllm.frontends.base import Frontend, Incoming
from proxyllm.frontends.responses.output import from_chat
from proxyllm.frontends.responses.request import ResponsesRequest, parse_request, truncate
from proxyllm.frontends.responses.store import ResponseStore, owner_of
from proxyllm.frontends.responses.stream import TERMINAL, ResponsesStreamEncoder, replay
from proxyllm.providers.responses import API

log = logging.getLogger("proxyllm.responses")
REQUEST: Slot[ResponsesRequest] = Slot("responses_request")
# Proxy-only fields taken out of the request (``metadata`` is the Responses API's own field).
NATIVE_PROXY_FIELDS = PROXY_FIELDS - {"metadata"}


def request_of(ctx: RequestContext) -> ResponsesRequest:
    request = ctx.get(REQUEST)
    assert request is not None
    return request


class ResponsesFrontend(Frontend):
    operation = Operation.RESPONSES
    translates = True

    def __init__(self, auth: Authenticator, store: ResponseStore, router: Router) -> None:
        self.auth = auth
        self.store = store
        self.router = router

    def context(self, incoming: Incoming) -> RequestContext:
        body = load_json(incoming.raw)
        if not isinstance(body, dict):
            raise invalid_request("the request body must be a JSON object")
        proxy_opts = {k: body.pop(k) for k in NATIVE_PROXY_FIELDS if k in body}
        request = parse_request(body)
        ctx = RequestContext(
            request_id=incoming.request_id,
            operation=Operation.RESPONSES,
            body={"model": body["model"], **proxy_opts},
            api_key=incoming.api_key,
        )
        ctx.started = incoming.started
        ctx.stream = body.get("stream") is True
        ctx.put(REQUEST, request)
        apply_proxy_fields(ctx)
        return ctx

    async def prepare(self, ctx: RequestContext) -> None:
        request = request_of(ctx)
        previous = request.body.get("previous_response_id")
        if previous is not None:
            principal = await self.auth.authenticate(ctx.api_key)  # whose stored responses to look in
            stored = await self.store.get(owner_of(principal), previous)
            request.history = [*stored.conversation, *stored.response.get("output", [])]
        if request.body.get("truncation") == "auto":
            limit = self.context_window(ctx.model)
            if limit is not None and truncate(request, limit, estimate_prompt_tokens):
                ctx.response_headers["x-proxyllm-truncated"] = "true"
        ctx.body.update(request.chat())
        ctx.native = NativeRequest(API, request.native())

    def context_window(self, model: str) -> int | None:
        """The smallest ``max_input_tokens`` among the model's deployments (model_info), if any is set."""
        group = self.router.find(model)
        sizes = [d.model_info.get("max_input_tokens") for d in group.deployments] if group is not None else []
        known = [size for size in sizes if isinstance(size, int) and size > 0]
        return min(known) if known else None

    async def encode(self, ctx: RequestContext, body: bytes) -> tuple[bytes, bool]:
        request = request_of(ctx)
        data = orjson.loads(body)
        if isinstance(data, dict) and data.get("object") == "response":
            data["id"] = request.response_id  # the proxy's id: the upstream stored nothing
            response = self._native(request, data)  # from an upstream that speaks Responses
        else:
            response = from_chat(request, data, ctx.usage, model=ctx.model)
        await self.save(ctx, response)
        if ctx.stream:
            return b"".join(replay(response)), True
        return orjson.dumps(response), False

    def stream_encoder(self, ctx: RequestContext) -> _Encoder:
        return _Encoder(self, ctx)

    @staticmethod
    def _native(request: ResponsesRequest, response: JSONObject) -> JSONObject:
        """An upstream's Response, told what the client asked: stored or not, and after which response."""
        request.response_id = str(response.get("id") or request.response_id)
        response["store"] = request.store
        response["previous_response_id"] = request.body.get("previous_response_id")
        return response

    async def save(self, ctx: RequestContext, response: JSONObject) -> None:
        """Store the response when the client asked to (the default). A database that fails here
        does not take the answer away from the client: the failure is logged."""
        request = request_of(ctx)
        if not request.store or ctx.outcome == "cancelled":
            return
        response.setdefault("id", request.response_id)
        try:
            await self.store.save(
                owner=owner_of(ctx.principal),
                response=response,
                input_items=request.input_items,
                conversation=request.conversation(),
            )
        except Exception:
            log.exception("could not store response %s of request %s", response.get("id"), ctx.request_id)


class _Encoder:
    """The Responses stream encoder; the final event is held back until the response is stored."""

    __slots__ = ("frontend", "inner")

    def __init__(self, frontend: ResponsesFrontend, ctx: RequestContext) -> None:
        self.frontend = frontend
        self.inner = ResponsesStreamEncoder(request_of(ctx), model=ctx.model)

    def feed(self, event: bytes) -> list[bytes]:
        return self.inner.feed(event)

    async def finish(self, ctx: RequestContext) -> list[bytes]:
        tail = self.inner.finish(ctx)
        response = self.inner.response
        if response is not None:
            if self.inner.native and self.inner.held is not None:
                response = ResponsesFrontend._native(request_of(ctx), response)
                tail = [_rewrite_terminal(self.inner.held, response)]
            await self.frontend.save(ctx, response)
        return tail


def _rewrite_terminal(event: bytes, response: JSONObject) -> bytes:
    """The upstream's final event with the Response as the client asked for it (``store``, previous id)."""
    lines = event.rstrip(b"\n").split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data:"):
            try:
                data = orjson.loads(line[5:])
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict) and data.get("type") in TERMINAL:
                data["response"] = response
                lines[i] = b"data: " + orjson.dumps(data)
    return b"\n".join(lines) + b"\n\n"
