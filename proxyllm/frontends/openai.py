"""OpenAI chat completions, completions and embeddings: the gateway's own format, bytes-through."""

from __future__ import annotations

from proxyllm.core.context import RequestContext
from proxyllm.core.requests import apply_proxy_fields, parse_body
from proxyllm.core.types import Operation
from proxyllm.frontends.base import Frontend, Incoming


class OpenAIFrontend(Frontend):
    """``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``: nothing to translate."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.batches = operation is Operation.CHAT  # "model": "a,b" asks each model (frontends/batch.py)

    def context(self, incoming: Incoming) -> RequestContext:
        body = parse_body(incoming.raw, self.operation)
        ctx = RequestContext(
            request_id=incoming.request_id, operation=self.operation, body=body, api_key=incoming.api_key
        )
        ctx.started = incoming.started
        apply_proxy_fields(ctx)
        return ctx
