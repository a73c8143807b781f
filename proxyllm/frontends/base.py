"""What a client API is: parse its request into the gateway's, encode the answer in its own format.

A frontend is a small object. The shared endpoint (``endpoint.py``) does everything else: the body
limit, the client-disconnect watch, the gateway call with its hooks, and the ``x-litellm-*`` headers.
A frontend whose wire format is the gateway's own (OpenAI chat, completions, embeddings) leaves the
answer alone (``translates`` is false and ``stream_encoder`` returns ``None``), so the hot path stays
bytes in, bytes out. The others encode: ``encode`` for a body, a ``StreamEncoder`` for a stream;
both are async at the end so that work such as storing the answer is done before its last byte goes
out (a client that sends its next request at once then finds it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ProxyError
from proxyllm.core.types import Operation

if TYPE_CHECKING:
    from proxyllm.accounts.auth import Authenticator
    from proxyllm.core.gateway import Gateway
    from proxyllm.core.router import Router


class Services(Protocol):
    """What the client APIs are built from (the server's runtime provides them)."""

    @property
    def gateway(self) -> Gateway: ...

    @property
    def router(self) -> Router: ...

    @property
    def auth(self) -> Authenticator: ...

    @property
    def max_body_bytes(self) -> int: ...


class Incoming:
    """What the endpoint read from the HTTP request before the frontend parses it."""

    __slots__ = ("api_key", "headers", "path", "raw", "request_id", "started")

    def __init__(
        self,
        *,
        raw: bytes,
        headers: dict[bytes, str],
        api_key: str | None,
        request_id: str,
        started: float,
        path: str = "",
    ) -> None:
        self.raw = raw
        self.headers = headers  # only the names the frontend asked for (``Frontend.headers``)
        self.api_key = api_key
        self.request_id = request_id
        self.started = started
        self.path = path  # e.g. Azure's /openai/deployments/{deployment}/... names the model in it


class StreamEncoder(Protocol):
    """Turns the gateway's OpenAI SSE events into the client API's own events."""

    def feed(self, event: bytes) -> list[bytes]: ...

    async def finish(self, ctx: RequestContext) -> list[bytes]: ...


class Frontend:
    """One client API. Subclasses override what their wire format needs."""

    operation: Operation = Operation.CHAT
    translates = False  # False: the gateway's body is the answer, sent as is (``encode`` is not called)
    headers: frozenset[bytes] = frozenset()  # request headers the frontend reads, lower-case
    max_body: int | None = None  # its own body limit (an upload), else general_settings.max_request_size_mb
    batches = False  # a comma-separated model runs one call per model (LiteLLM's batch completion)
    stream_type = b"text/event-stream"  # the content type of a streamed answer (Ollama's: NDJSON)

    def context(self, incoming: Incoming) -> RequestContext:
        """Parse and check the request; raise ProxyError (a 400) for anything wrong in it."""
        raise NotImplementedError

    async def prepare(self, ctx: RequestContext) -> None:
        """Work that needs I/O before the gateway call (e.g. loading a stored conversation)."""

    async def encode(self, ctx: RequestContext, body: bytes) -> tuple[bytes, bool]:
        """The answer to send for a gateway body, and whether it is an event stream."""
        return body, False

    def stream_encoder(self, ctx: RequestContext) -> StreamEncoder | None:
        """None: the gateway's events are the client's events (bytes-through)."""
        return None

    def content_type(self, ctx: RequestContext) -> bytes:
        """The answer's media type (overridden by the endpoints whose answer is not JSON)."""
        return b"application/json"

    def error_body(self, err: ProxyError, request_id: str) -> bytes:
        return err.body()
