"""What a call cost, in exact decimal dollars (never a float).

Prompt tokens read from or written to a provider's prompt cache (Anthropic ``cache_read_input_tokens`` /
``cache_creation_input_tokens``, OpenAI ``prompt_tokens_details.cached_tokens``, Gemini
``cachedContentTokenCount``) cost ``cache_read_input_token_cost`` / ``cache_creation_input_token_cost``
when the deployment (or the bundled price table) has them, else the input price.

Token prices (``input_cost_per_token`` / ``output_cost_per_token``) and compute-time prices
(``input_cost_per_second`` / ``output_cost_per_second``, LiteLLM's names) add up. The seconds come
from the upstream's own durations when it reports them (Ollama: ``load_duration``,
``prompt_eval_duration``, ``eval_duration``, ``total_duration``), else from the wall time of the call
(both prices then apply to it, as LiteLLM does). A deployment chooses how Ollama's durations count:

- ``compute_time: sum`` (default): input seconds = load + prompt evaluation, output seconds = evaluation;
- ``compute_time: total``: input seconds = ``total_duration`` - evaluation, output seconds = evaluation
  (so the server's own overhead is charged too);

and ``exclude_load_time: true`` leaves a cold start's model load out. The seconds charged are at most
``seconds_bound`` (the deployment's longest timeout), which is what the admission step reserves.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from proxyllm.core.deployment import Deployment
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Usage
from proxyllm.core.units import audio_cost, price_setting, unit_cost

if TYPE_CHECKING:
    from proxyllm.core.context import RequestContext

ZERO = Decimal(0)
NANO = Decimal(10**9)
COMPUTE_TIME_MODES = ("sum", "total")


def seconds_bound(dep: Deployment) -> Decimal:
    """The most seconds one call to ``dep`` is charged for."""
    return Decimal(repr(max(dep.timeout, dep.stream_timeout)))


def wall_seconds(seconds: float) -> Decimal:
    """A measured duration as exact milliseconds."""
    return Decimal(int(max(seconds, 0.0) * 1000)) / 1000


def compute_seconds(dep: Deployment, usage: Usage | None, wall: float) -> tuple[Decimal, Decimal]:
    """(input seconds, output seconds) of one call, each at most ``seconds_bound``."""
    compute = usage.compute if usage is not None else None
    bound = seconds_bound(dep)
    if compute is None:
        seconds = min(wall_seconds(wall), bound)
        return seconds, seconds
    load = 0 if dep.exclude_load_time else compute.load_ns
    if dep.compute_time == "total" and compute.total_ns:
        overhead = compute.load_ns if dep.exclude_load_time else 0
        inp = max(compute.total_ns - compute.eval_ns - overhead, 0)
    else:
        inp = load + compute.prompt_eval_ns
    return min(Decimal(inp) / NANO, bound), min(Decimal(compute.eval_ns) / NANO, bound)


def priced_per_second(dep: Deployment) -> bool:
    return bool(dep.input_cost_per_second or dep.output_cost_per_second)


def input_cost(dep: Deployment, usage: Usage) -> Decimal:
    """The prompt's cost: tokens read from or written to a prompt cache at their own prices when the
    deployment has them (``cache_read_input_token_cost`` / ``cache_creation_input_token_cost``), every
    other prompt token at ``input_cost_per_token``."""
    base = dep.input_cost_per_token or ZERO
    read_price, creation_price = dep.cache_read_input_token_cost, dep.cache_creation_input_token_cost
    prompt = usage.prompt_tokens
    read = min(usage.cached_tokens, prompt) if read_price is not None else 0
    created = min(usage.cache_creation_tokens, prompt - read) if creation_price is not None else 0
    cost = base * (prompt - read - created) if base else ZERO
    if read:
        cost += (read_price or ZERO) * read
    if created:
        cost += (creation_price or ZERO) * created
    return cost


def max_input_price(dep: Deployment) -> Decimal:
    """The most one prompt token can cost (writing to a prompt cache may cost more than reading input)."""
    return max(dep.input_cost_per_token or ZERO, dep.cache_creation_input_token_cost or ZERO)


def call_cost(dep: Deployment, usage: Usage | None, wall: float = 0.0) -> Decimal:
    if usage is None:
        return ZERO
    cost = input_cost(dep, usage)
    if dep.output_cost_per_token:
        cost += dep.output_cost_per_token * usage.completion_tokens
    units = usage.units
    if units is not None:
        cost += unit_cost(dep, units)
        if units.audio_seconds is not None:  # a transcription: the audio's seconds, not the call's
            return cost + audio_cost(dep, units.audio_seconds)
    if priced_per_second(dep):
        inp, out = compute_seconds(dep, usage, wall)
        cost += (dep.input_cost_per_second or ZERO) * inp + (dep.output_cost_per_second or ZERO) * out
    return cost


def worst_case_seconds_cost(dep: Deployment) -> Decimal:
    """The most a call's compute time can cost (added to the token worst case by the admission step)."""
    if not priced_per_second(dep):
        return ZERO
    return ((dep.input_cost_per_second or ZERO) + (dep.output_cost_per_second or ZERO)) * seconds_bound(dep)


class ComputeSettings(TypedDict, total=False):
    """The compute-time fields of a deployment (``Deployment`` takes them as keyword arguments)."""

    input_cost_per_second: Decimal
    output_cost_per_second: Decimal
    compute_time: str
    exclude_load_time: bool


def compute_settings(extras: JSONObject, where: str) -> ComputeSettings:
    """The compute-time fields of a deployment's ``litellm_params`` (extra keys), checked."""
    found: ComputeSettings = {}
    raw = extras.get("input_cost_per_second")
    if raw is not None:
        found["input_cost_per_second"] = price_setting(raw, f"{where}: litellm_params.input_cost_per_second")
    raw = extras.get("output_cost_per_second")
    if raw is not None:
        found["output_cost_per_second"] = price_setting(raw, f"{where}: litellm_params.output_cost_per_second")
    mode = extras.get("compute_time")
    if mode is not None:
        if mode not in COMPUTE_TIME_MODES:
            raise ValueError(f"{where}: litellm_params.compute_time must be 'sum' or 'total', got {mode!r}")
        found["compute_time"] = mode
    exclude = extras.get("exclude_load_time")
    if exclude is not None:
        if type(exclude) is not bool:
            raise ValueError(f"{where}: litellm_params.exclude_load_time must be true or false")
        found["exclude_load_time"] = exclude
    return found


def format_cost(cost: Decimal) -> str:
    return format(cost.normalize(), "f") if cost else "0"


def estimate_prompt_tokens(body: JSONObject) -> int:
    """A generous count from characters (about four per token), cheap enough for every request."""
    chars = 0
    for msg in body.get("messages") or ():
        content = msg.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    chars += len(str(part.get("text", ""))) or 1000  # images and other parts
        chars += 16
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, list):
            chars += sum(len(v) if isinstance(v, str) else 4 for v in value)
    return chars // 3 + 1


def request_price(ctx: RequestContext) -> Decimal:
    """What the customer is charged for a finished request: its price plan's answer (computed once), else
    the cost."""
    if ctx.price is None:
        plan = ctx.price_plan
        ctx.price = plan.price(ctx) if plan is not None else (ctx.cost or ZERO)
    return ctx.price
