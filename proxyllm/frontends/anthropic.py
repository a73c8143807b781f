"""Anthropic Messages (``/v1/messages``) and its ``count_tokens``, in front of any model.

A Messages request is translated to an OpenAI chat request and runs through the same gateway call as
``/v1/chat/completions`` (auth, hooks, router retries and fallbacks, cost); the answer — a body or a
stream — is translated back to Anthropic's format, event names included. Anthropic deployments get
the client's own request (see ``providers/anthropic/provider.py``), so nothing is lost on the way out,
and their answer comes back byte for byte (``providers/anthropic/passthrough.py``).
Errors are answered in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import orjson

from proxyllm.core.admission import group_output_limit
from proxyllm.core.context import NativeRequest, RequestContext
from proxyllm.core.errors import ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.requests import PROXY_FIELDS, apply_proxy_fields, load_json
from proxyllm.core.router import Router
from proxyllm.core.routing.groups import ModelGroup
from proxyllm.core.types import Operation
from proxyllm.frontends.base import Frontend, Incoming, StreamEncoder
from proxyllm.frontends.reasoning import keep_reasoning
from proxyllm.providers.anthropic.errors import anthropic_error_body
from proxyllm.providers.anthropic.messages_request import check_request, estimate_input_tokens, openai_request
from proxyllm.providers.anthropic.messages_response import anthropic_message
from proxyllm.providers.anthropic.messages_stream import AnthropicStreamEncoder, message_events
from proxyllm.providers.anthropic.provider import API, AnthropicProvider

# Proxy-only fields taken out of an Anthropic request (``metadata`` is Anthropic's own field there).
NATIVE_PROXY_FIELDS = PROXY_FIELDS - {"metadata"}
BETA = b"anthropic-beta"


def parse_native(raw: bytes) -> JSONObject:
    return check_request(load_json(raw))


def anthropic_group(group: ModelGroup | None) -> bool:
    return group is not None and all(isinstance(d.provider, AnthropicProvider) for d in group.deployments)


def message_id(ctx: RequestContext) -> str:
    return "msg_" + ctx.request_id.replace("-", "")


class _AnthropicFrontend(Frontend):
    headers = frozenset({BETA})

    def __init__(self, router: Router) -> None:
        self.router = router

    def anthropic_only(self, model: str) -> bool:
        """True when the model exists and every one of its deployments is Anthropic."""
        return anthropic_group(self.router.find(model))

    def error_body(self, err: ProxyError, request_id: str) -> bytes:
        return anthropic_error_body(err, request_id)


class _Encoder:
    """The Anthropic stream encoder, fed the gateway's events.

    An Anthropic deployment's events (they start with ``event:``) are already the client's: relayed as
    they are. The gateway's OpenAI chunks (any other upstream, and the proxy's own error event) are
    translated. Telling them apart by their bytes keeps a replay from the response cache right too.
    """

    __slots__ = ("inner", "native")

    def __init__(self, inner: AnthropicStreamEncoder) -> None:
        self.inner = inner
        self.native = False

    def feed(self, event: bytes) -> list[bytes]:
        if event.startswith(b"event:"):
            self.native = True
            return [event]
        return self.inner.feed(event)

    async def finish(self, ctx: RequestContext) -> list[bytes]:
        if self.native:
            return []
        return self.inner.finish(ctx.usage.as_openai() if ctx.usage else None)


class MessagesFrontend(_AnthropicFrontend):
    """``POST /v1/messages``: plain and streamed, from any configured model."""

    def context(self, incoming: Incoming) -> RequestContext:
        native = parse_native(incoming.raw)
        proxy_opts = {k: native.pop(k) for k in NATIVE_PROXY_FIELDS if k in native}
        group = self.router.find(native["model"])
        limit = group_output_limit(group) if group is not None else None
        if limit is not None and native.get("max_tokens", 0) > limit:
            native["max_tokens"] = limit  # Claude Code asks for 32,000 whatever the model: the model's limit
        body = openai_request(native, strict=not anthropic_group(group))
        keep_reasoning(body, native, group)
        body.update(proxy_opts)
        ctx = RequestContext(
            request_id=incoming.request_id, operation=Operation.CHAT, body=body, api_key=incoming.api_key
        )
        ctx.started = incoming.started
        ctx.native = NativeRequest(API, native, beta=incoming.headers.get(BETA))
        apply_proxy_fields(ctx)
        return ctx

    translates = True

    async def encode(self, ctx: RequestContext, body: bytes) -> tuple[bytes, bool]:
        data = orjson.loads(body)
        if isinstance(data, dict) and data.get("type") == "message":  # an Anthropic deployment's own answer
            if ctx.stream:
                return b"".join(message_events(data)), True
            return body, False
        message = anthropic_message(data, message_id=message_id(ctx), model=ctx.model)
        if ctx.stream:
            return b"".join(message_events(message)), True
        return orjson.dumps(message), False

    def stream_encoder(self, ctx: RequestContext) -> StreamEncoder:
        return _Encoder(AnthropicStreamEncoder(message_id=message_id(ctx), model=ctx.model))


class CountTokensFrontend(_AnthropicFrontend):
    """``POST /v1/messages/count_tokens``, through the same hooks as every call (auth, limits, log).

    When every deployment of the model is Anthropic, Anthropic counts (its answer is passed through).
    For any other model no upstream can count Anthropic-format input, so the proxy answers with an
    estimate — about four characters a token plus a flat 1,600 tokens per image — marked with the
    response header ``x-proxyllm-token-count: estimate`` and ``"estimated": true`` in the body. A
    client that budgets a context window gets a usable figure instead of an error; one that needs
    exact counts can see that this one is not. The estimate is handed to the gateway as an answer
    that needs no upstream, so the hooks run (and log a call of cost zero) all the same.
    """

    operation = Operation.COUNT_TOKENS

    def context(self, incoming: Incoming) -> RequestContext:
        body = parse_native(incoming.raw)
        for key in NATIVE_PROXY_FIELDS:
            body.pop(key, None)
        ctx = RequestContext(
            request_id=incoming.request_id, operation=Operation.COUNT_TOKENS, body=body, api_key=incoming.api_key
        )
        ctx.started = incoming.started
        ctx.stream = False
        ctx.request_fallbacks = []  # only an Anthropic deployment can count; no other group can stand in
        ctx.native = NativeRequest(API, body, beta=incoming.headers.get(BETA))
        group = self.router.find(body["model"])
        if group is not None and not self.anthropic_only(body["model"]):
            openai_request(body, strict=False)  # the same checks a real call would make
            ctx.local_answer = orjson.dumps({"input_tokens": estimate_input_tokens(body), "estimated": True})
            ctx.response_headers["x-proxyllm-token-count"] = "estimate"
        return ctx
