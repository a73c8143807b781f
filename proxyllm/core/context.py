"""Everything known about one request while it passes through the gateway."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextvars import ContextVar
from decimal import Decimal
from typing import TYPE_CHECKING, Generic, Protocol, TypeAlias, TypeVar, cast

from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Operation, Units, Usage

T = TypeVar("T")


class Slot(Generic[T]):
    """A typed place on a request for one module's own state (a hook's reservation, its trace spans):
    declared once, by its owner, with its type — ``GRANT: Slot[Grant] = Slot("grant")`` — and read and
    written only through ``ctx.get(slot)`` / ``ctx.put(slot, value)``. What several modules share is a
    named field of ``RequestContext`` instead."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


# What the gateway answers: a whole body, or a stream of encoded events.
Answer: TypeAlias = "bytes | AsyncGenerator[bytes, None]"
# A hook that wants the response (the cache, to store it) wraps the body or the stream on its way out.
ResponseWrapper: TypeAlias = "Callable[[RequestContext, Answer], Answer]"
# The client request's headers when no ASGI scope is at hand: a mapping, or the ASGI (name, value) byte pairs.
RequestHeaders: TypeAlias = "Mapping[str, str] | Sequence[tuple[bytes, bytes]]"


class NativeRequest:
    """The client's own request in its API's format (Anthropic Messages, Responses), kept beside the gateway's
    OpenAI-form body so that an upstream speaking the same API gets it as sent (nothing lost in translation)."""

    __slots__ = ("api", "beta", "body", "path")

    def __init__(self, api: str, body: JSONObject, *, beta: str | None = None, path: str | None = None) -> None:
        self.api = api  # "anthropic" | "responses" | "ollama"
        self.body = body
        self.beta = beta  # Anthropic: the client's anthropic-beta header
        self.path = path  # Ollama: the endpoint it came in on (/api/chat, /api/generate, ...)


class KeyGrant(Protocol):
    """What the core reads of a virtual key's record (``accounts.records.KeyAuth`` provides it): its tags
    (tag routing), its team's model aliases, its metadata, and which models it may use."""

    tags: list[str]
    model_aliases: dict[str, str]
    metadata: JSONObject

    def may_use(self, model: str, group: str | None, access_groups: frozenset[str] = ...) -> bool: ...


class PricePlan(Protocol):
    """How a customer is charged (a rate card, a markup): billing/prices.py provides it."""

    def price(self, ctx: RequestContext) -> Decimal: ...


# The ASGI scope of the request being served (set by the outermost middleware): who is asking, from where.
CURRENT_SCOPE: ContextVar[Scope | None] = ContextVar("proxyllm_current_scope", default=None)

if TYPE_CHECKING:
    from starlette.types import Scope

    from proxyllm.core.admission import Admission
    from proxyllm.core.deployment import Deployment
    from proxyllm.core.errors import ProxyError
    from proxyllm.core.routing.groups import ModelGroup


class Principal:
    """Who is calling: the master key, an open proxy, or (later) a virtual key."""

    __slots__ = ("auth", "is_admin", "key_alias", "key_hash", "kind", "metadata", "team_id", "user_id")

    def __init__(
        self,
        kind: str,
        *,
        is_admin: bool = False,
        key_hash: str | None = None,
        key_alias: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        metadata: JSONObject | None = None,
        auth: KeyGrant | None = None,
    ) -> None:
        self.kind = kind
        self.auth = auth  # the key's cached record (accounts.records.KeyAuth) for virtual keys
        self.is_admin = is_admin
        self.key_hash = key_hash
        self.key_alias = key_alias
        self.user_id = user_id
        self.team_id = team_id
        self.metadata = metadata or {}


class RequestContext:
    __slots__ = (
        "admission",
        "api_key",
        "attempts",
        "body",
        "cache_hit",
        "cache_miss",
        "client_wants_usage",
        "cost",
        "deployment",
        "drop_params",
        "error",
        "fallback_overrides",
        "fallbacks",
        "first_chunk_at",
        "group",
        "hooks_ran",
        "local_answer",
        "mock_response",
        "model",
        "model_group",
        "native",
        "on_stream_end",
        "operation",
        "options",
        "outcome",
        "output_chunks",
        "price",
        "price_plan",
        "principal",
        "request_fallbacks",
        "request_headers",
        "request_id",
        "response_headers",
        "response_wrapper",
        "retries",
        "slots",
        "started",
        "started_wall",
        "stream",
        "tags",
        "timeout",
        "units_bound",
        "upstream_seconds",
        "upstream_wait",
        "usage",
    )

    def __init__(
        self,
        *,
        request_id: str,
        operation: Operation,
        body: JSONObject,
        api_key: str | None = None,
        request_headers: RequestHeaders | None = None,
    ) -> None:
        self.request_id = request_id
        self.operation = operation
        self.body = body
        self.model: str = body["model"]
        self.stream: bool = body.get("stream") is True
        opts = body.get("stream_options")
        self.client_wants_usage = bool(opts and opts.get("include_usage"))
        self.api_key = api_key
        self.request_headers = request_headers
        self.principal: Principal | None = None
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.model_group: str = self.model
        self.group: ModelGroup | None = None  # resolved once, by the admission step
        self.admission: Admission | None = None  # bounds and worst-case cost, by the admission step
        self.cache_hit = False
        # An answer the client API already has (e.g. a token-count estimate): every hook runs, no upstream.
        self.local_answer: bytes | None = None
        self.deployment: Deployment | None = None
        self.usage: Usage | None = None
        self.cost: Decimal | None = None
        self.retries = 0
        self.fallbacks = 0
        self.attempts: list[tuple[Deployment, ProxyError]] = []
        self.first_chunk_at: float | None = None
        self.output_chunks = 0
        self.timeout: float | None = None  # per-request override
        self.upstream_seconds = 0.0
        self.upstream_wait = 0.0  # seconds spent waiting on upstreams (and retry waits) before the response
        self.on_stream_end: Callable[[RequestContext], None] | None = None  # set by the router, run by the relay
        self.outcome = "pending"  # success | error | cancelled
        self.price_plan: PricePlan | None = None  # the customer's plan (billing/prices.py), when one applies
        self.price: Decimal | None = None  # what the customer is charged, once known (core.pricing.request_price)
        self.error: ProxyError | None = None
        self.response_headers: dict[str, str] = {}
        self.native: NativeRequest | None = None  # the client's own request, when its API is not OpenAI's
        self.slots: dict[object, object] | None = None  # Slot -> value (``get`` / ``put``), made on first use
        self.options: JSONObject | None = None  # the request's proxy-only options (core/requests.py)
        self.cache_miss = False  # the response cache looked and had nothing (metrics)
        self.response_wrapper: ResponseWrapper | None = None  # sees the response on its way out (the cache)
        self.drop_params = False  # the request's own drop_params
        self.request_fallbacks: list[str] | None = None
        self.tags: frozenset[str] = frozenset()  # the request's metadata.tags and its key's tags (tag routing)
        self.mock_response: str | None = None  # LiteLLM's mock_response: answer this text, call no upstream
        self.fallback_overrides: dict[str, JSONObject] | None = None  # per fallback model: fields it changes
        self.hooks_ran = 0
        self.units_bound: Units | None = None  # a media request's most images/characters/seconds/searches

    def get(self, slot: Slot[T]) -> T | None:
        slots = self.slots
        return None if slots is None else cast("T | None", slots.get(slot))

    def put(self, slot: Slot[T], value: T) -> None:
        if self.slots is None:
            self.slots = {}
        self.slots[slot] = value

    def pop(self, slot: Slot[T]) -> T | None:
        slots = self.slots
        return None if slots is None else cast("T | None", slots.pop(slot, None))
