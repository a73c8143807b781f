"""The admission step: every request is resolved, bounded and priced once, before any upstream work.

It runs right after authentication, and everything after it — model access, rate limits, the cache,
budgets, prepaid credits, the router — reads its result from ``ctx.group`` and ``ctx.admission``
instead of working it out again.

Bounds. Every field that drives cost is checked here: ``max_tokens`` / ``max_completion_tokens`` /
``num_predict`` (top level or in Ollama's ``options``) must be whole numbers from 1 up to the model's
output limit (``model_info.max_output_tokens`` on its deployments), else 400. Ollama's "unlimited"
(``num_predict`` -1 or -2) means the model's limit and is rewritten to it. ``n`` and ``best_of`` are at
most ``MAX_CHOICES``.

The estimator (one, documented, conservative). The most a request can cost is

    prompt_tokens_max * input_price + max_output_tokens * choices * output_price

at the highest prices in its model group, where

- ``prompt_tokens_max`` counts every text the upstream sees — message contents, tool calls and their
  arguments, tool definitions, ``prompt`` / ``input`` — at one token per ``BYTES_PER_TOKEN`` UTF-8 bytes
  (tokenizers average about four bytes per token on English and about three per CJK character, so
  this over-counts ordinary text), plus ``MESSAGE_OVERHEAD`` tokens per message and ``IMAGE_TOKENS`` per
  image (a high-detail image is about 765-1,500 tokens at the major providers);
- ``max_output_tokens`` is the request's own limit, else the model's output limit, else
  ``DEFAULT_MAX_OUTPUT_TOKENS`` (env ``PROXYLLM_DEFAULT_MAX_OUTPUT_TOKENS``);
- ``choices`` is ``n`` (and ``best_of`` for completions).

When the request names no output limit, the model has no known one, and money is at stake (a budget
or prepaid credit is reserved), the proxy sends the default limit upstream, so the reservation is a
true upper bound on what the answer can cost.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import invalid_request
from proxyllm.core.hooks import Hook
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.pricing import max_input_price, worst_case_seconds_cost
from proxyllm.core.types import MEDIA, Operation, Units
from proxyllm.core.units import audio_cost, unit_cost

if TYPE_CHECKING:
    from proxyllm.core.deployment import Deployment
    from proxyllm.core.router import ModelGroup, Router

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD = 8
IMAGE_TOKENS = 2000
MAX_CHOICES = 128
MAX_OUTPUT_CEILING = 1_000_000  # for models whose output limit is not configured
DEFAULT_MAX_OUTPUT_TOKENS = 4096
OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "num_predict")
UNLIMITED = (-1, -2)  # Ollama's num_predict: "until the model stops" / "fill the context"
ZERO = Decimal(0)


def default_max_output_tokens(env: Mapping[str, str] = os.environ) -> int:
    raw = env.get("PROXYLLM_DEFAULT_MAX_OUTPUT_TOKENS") or env.get("STRIPE_DEFAULT_MAX_TOKENS")
    if not raw:
        return DEFAULT_MAX_OUTPUT_TOKENS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"PROXYLLM_DEFAULT_MAX_OUTPUT_TOKENS must be a whole number, got {raw!r}") from None
    if not 1 <= value <= MAX_OUTPUT_CEILING:
        raise ValueError(f"PROXYLLM_DEFAULT_MAX_OUTPUT_TOKENS must be between 1 and {MAX_OUTPUT_CEILING}")
    return value


@dataclass(slots=True)
class Admission:
    """What the admission step decided about one request.

    The bounds are checked for every request; the prompt walk and the worst-case cost are computed
    only when a hook that holds money asks for them (a master-key call never does)."""

    max_output_tokens: int  # per choice
    output_limit_known: bool  # the request or the model bounds the output (no need to send a limit upstream)
    choices: int
    bodies: list[JSONObject] = field(default_factory=list)  # the request, and with each fallback's fields
    deployments: list[Deployment] = field(default_factory=list)  # every deployment that may answer
    max_price: Decimal | None = None  # worst case of what the customer is charged (billing/prices.py)
    units: Units | None = None  # a media request's most images, characters, seconds, search units
    _prompt: int | None = None
    _cost: Decimal | None = None

    @property
    def prompt_tokens(self) -> int:
        """An upper estimate of the prompt's tokens (the largest of the request's bodies)."""
        if self._prompt is None:
            self._prompt = max((prompt_tokens_max(body) for body in self.bodies), default=0)
        return self._prompt

    @property
    def max_cost(self) -> Decimal:
        """The worst case at the highest prices of the deployments that may answer."""
        if self._cost is None:
            output = self.max_output_tokens * self.choices
            self._cost = worst_case_cost(self.deployments, self.prompt_tokens, output, self.units)
        return self._cost

    def cap_output(self, ctx: RequestContext) -> None:
        """Send the assumed output limit upstream, so the answer cannot outgrow the reservation."""
        if self.output_limit_known or ctx.operation is Operation.EMBEDDING:
            return
        ctx.body["max_tokens"] = self.max_output_tokens
        self.output_limit_known = True


def output_limit(dep: Deployment) -> int | None:
    value = dep.model_info.get("max_output_tokens")
    return value if type(value) is int and value > 0 else None


def group_output_limit(group: ModelGroup) -> int | None:
    """The largest output any deployment of the group allows, when every one of them says."""
    limits = [output_limit(d) for d in group.deployments]
    if not limits or any(v is None for v in limits):
        return None
    return max(v for v in limits if v is not None)


def _whole(value: JSONValue, name: str) -> int:
    if type(value) is not int:
        raise invalid_request(f"'{name}' must be an integer", param=name)
    return value


def bound_output(body: JSONObject, limit: int | None) -> int | None:
    """The request's own output limit (validated, Ollama's unlimited rewritten), or None."""
    ceiling = limit or MAX_OUTPUT_CEILING
    found: int | None = None
    options = body.get("options")
    if options is not None and type(options) is not dict:
        raise invalid_request("'options' must be an object", param="options")
    for holder, name, label in (
        *((body, f, f) for f in OUTPUT_FIELDS),
        *(((options, "num_predict", "options.num_predict"),) if options else ()),
    ):
        value = holder.get(name)
        if value is None:
            continue
        value = _whole(value, label)
        if name == "num_predict" and value in UNLIMITED:
            value = ceiling
            holder[name] = value
        if value < 1:
            raise invalid_request(f"'{label}' must be at least 1, got {value}", param=label)
        if value > ceiling:
            what = "this model's output limit" if limit else "the largest output the proxy allows"
            raise invalid_request(f"'{label}' is {value}, more than {what} ({ceiling})", param=label)
        found = value if found is None else max(found, value)
    return found


def bound_choices(body: JSONObject, operation: Operation) -> int:
    choices = 1
    for name in ("n", "best_of") if operation is Operation.COMPLETION else ("n",):
        value = body.get(name)
        if value is None:
            continue
        value = _whole(value, name)
        if not 1 <= value <= MAX_CHOICES:
            raise invalid_request(f"'{name}' must be between 1 and {MAX_CHOICES}, got {value}", param=name)
        choices = max(choices, value)
    return choices


def _text_bytes(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def _content_tokens(content: JSONValue) -> int:
    if isinstance(content, str):
        return _text_bytes(content) // BYTES_PER_TOKEN
    if isinstance(content, list):
        tokens = 0
        for part in content:
            if isinstance(part, dict):
                kind = part.get("type")
                if kind in ("image_url", "image", "input_image") or "image_url" in part:
                    tokens += IMAGE_TOKENS
                else:
                    tokens += _json_tokens(part)
            elif isinstance(part, str):
                tokens += _text_bytes(part) // BYTES_PER_TOKEN
        return tokens
    if content is None:
        return 0
    return _json_tokens(content)


def _json_tokens(value: JSONValue) -> int:
    return len(orjson.dumps(value)) // BYTES_PER_TOKEN


def prompt_tokens_max(body: JSONObject) -> int:
    """An upper estimate of the prompt's tokens (see the module's docstring)."""
    tokens = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            tokens += MESSAGE_OVERHEAD
            if not isinstance(message, dict):
                continue
            tokens += _content_tokens(message.get("content"))
            for name in ("tool_calls", "function_call"):
                if message.get(name):
                    tokens += _json_tokens(message[name])
            images = message.get("images")  # Ollama's form
            if isinstance(images, list):
                tokens += IMAGE_TOKENS * len(images)
    for name in ("tools", "functions", "response_format"):
        if body.get(name):
            tokens += _json_tokens(body[name])
    documents = body.get("documents")  # rerank: the query is read once per document
    if isinstance(documents, list):
        query = body.get("query")
        per_doc = _text_bytes(query) // BYTES_PER_TOKEN + 1 if isinstance(query, str) else 0
        for doc in documents:
            text = doc.get("text") if isinstance(doc, dict) else doc
            tokens += per_doc + (_text_bytes(text) // BYTES_PER_TOKEN + 1 if isinstance(text, str) else 0)
    for name in ("prompt", "input", "suffix"):
        value = body.get(name)
        if isinstance(value, str):
            tokens += _text_bytes(value) // BYTES_PER_TOKEN + 1
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    tokens += _text_bytes(item) // BYTES_PER_TOKEN + 1
                elif isinstance(item, list):
                    tokens += len(item)  # already tokens
                else:
                    tokens += 1
    return tokens + 1


def worst_case_cost(deployments: list[Deployment], prompt: int, output: int, units: Units | None = None) -> Decimal:
    worst = ZERO
    for dep in deployments:
        cost = ZERO
        input_price = max_input_price(dep)
        if input_price:
            cost += input_price * prompt
        if dep.output_cost_per_token:
            cost += dep.output_cost_per_token * output
        if units is not None:
            cost += unit_cost(dep, units)
        if units is not None and units.audio_seconds is not None:
            cost += audio_cost(dep, units.audio_seconds)  # a transcription: the audio's seconds at most
        else:
            cost += worst_case_seconds_cost(dep)  # compute-time prices, for the longest a call may be charged
        if cost > worst:
            worst = cost
    return worst


def admit(
    ctx: RequestContext, group: ModelGroup, default_output: int, also: list[ModelGroup] | None = None
) -> Admission:
    """Bound and price ``ctx`` for ``group`` (and the groups its own fallbacks may reach, ``also``)."""
    body = ctx.body
    if ctx.operation in MEDIA:
        return admit_media(ctx, group, also)
    limit = group_output_limit(group)
    requested = bound_output(body, limit)
    choices = bound_choices(body, ctx.operation) if ctx.operation is not Operation.EMBEDDING else 1
    if ctx.operation is Operation.COUNT_TOKENS:  # counting input is free: nothing to bound or reserve
        return Admission(0, True, 1, max_price=ZERO)
    if ctx.operation is Operation.EMBEDDING:
        max_output, known = 0, True
    elif requested is not None:
        max_output, known = requested, True
    elif limit is not None:
        max_output, known = limit, True
    else:
        max_output, known = default_output, False
    bodies = [body]  # a fallback object may bring its own messages
    bodies += [{**body, **overrides} for overrides in (ctx.fallback_overrides or {}).values()]
    deployments = group.deployments
    if also:
        deployments = [*deployments, *(d for g in also for d in g.deployments)]
    return Admission(max_output, known, choices, bodies, deployments)


IMAGE_OUTPUT_TOKENS = 8192  # an image's output tokens at most, where an image model is priced by token
TRANSCRIPT_TOKENS_PER_SECOND = 10  # a transcript's tokens per second of audio at most (speech is ~3 words/s)


def admit_media(ctx: RequestContext, group: ModelGroup, also: list[ModelGroup] | None) -> Admission:
    """Images, moderations, audio, rerank: bounded by their units (frontends/media.py, core/units.py)."""
    units = ctx.units_bound or Units()
    if ctx.operation not in group.operations:
        raise invalid_request(
            f"model '{ctx.model}' does not serve {ctx.operation.value} requests",
            param="model",
            code="unsupported_operation",
        )
    output = units.images_out * IMAGE_OUTPUT_TOKENS + units.characters
    if units.audio_seconds is not None:
        output += int(units.audio_seconds) * TRANSCRIPT_TOKENS_PER_SECOND
    deployments = group.deployments
    if also:
        deployments = [*deployments, *(d for g in also for d in g.deployments)]
    return Admission(output, True, 1, [ctx.body], deployments, units=units)


def aliased(ctx: RequestContext) -> str:
    """The model group a team's ``model_aliases`` map the requested name to (else the name itself)."""
    principal = ctx.principal
    aliases = principal.auth.model_aliases if principal is not None and principal.auth is not None else None
    if aliases:
        target = aliases.get(ctx.model)
        if isinstance(target, str):
            return target
    return ctx.model


class AdmissionHook(Hook):
    """Resolves the model group once (404 for an unknown model), bounds the request, prices it."""

    name = "admission"

    def __init__(self, router: Router, *, default_output: int = DEFAULT_MAX_OUTPUT_TOKENS) -> None:
        self.router = router
        self.default_output = default_output

    async def before_call(self, ctx: RequestContext) -> None:
        group = ctx.group
        if group is None:
            group = ctx.group = self.router.resolve(aliased(ctx))
        also = None
        if ctx.request_fallbacks:  # the client's own fallbacks are priced too: any of them may answer
            also = [g for g in map(self.router.find, ctx.request_fallbacks) if g is not None]
        ctx.admission = admit(ctx, group, self.default_output, also)
