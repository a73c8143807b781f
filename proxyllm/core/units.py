"""Per-unit prices of the media operations: images, characters, audio seconds, search units.

LiteLLM's names, set in a deployment's ``litellm_params`` or ``model_info``:

- ``input_cost_per_image`` (each image sent with a request) and ``output_cost_per_image`` (each image
  generated, ``/v1/images/generations``);
- ``input_cost_per_character`` (text to speech, ``/v1/audio/speech``: the characters of ``input``);
- ``input_cost_per_second`` for a transcription (``/v1/audio/transcriptions``) counts the seconds of
  audio transcribed (as the upstream reports them, ``usage.seconds`` or ``duration``; else read from a
  WAV file's header; else the upload's bound below), not the wall time of the call;
- ``input_cost_per_query`` (rerank: per search unit, one query over up to 100 documents, as Cohere
  bills; the upstream's ``meta.billed_units.search_units`` when it reports them).

Token prices still apply when an upstream reports tokens (``gpt-image-1``, ``gpt-4o-transcribe``).
The admission step reserves the worst case from the request's bounds (``bound_units``): ``n`` images,
the input's characters, ``ceil(documents / 100)`` search units, and for audio the upload's size at
``AUDIO_BYTES_PER_SECOND`` (8 kbit/s, below any speech codec's usual rate); the seconds charged are
capped at that bound, so the reservation is a true upper bound.
"""

from __future__ import annotations

from decimal import Decimal

from proxyllm.core.deployment import Deployment
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Units

ZERO = Decimal(0)
UNIT_PRICES = ("input_cost_per_image", "output_cost_per_image", "input_cost_per_character", "input_cost_per_query")
AUDIO_BYTES_PER_SECOND = 1000  # 8 kbit/s
DOCUMENTS_PER_SEARCH_UNIT = 100


def audio_seconds_bound(upload_bytes: int) -> Decimal:
    return Decimal(upload_bytes // AUDIO_BYTES_PER_SECOND + 1)


def search_units(documents: int) -> int:
    return max(1, -(-documents // DOCUMENTS_PER_SEARCH_UNIT))


def unit_cost(dep: Deployment, units: Units) -> Decimal:
    """What the units cost at the deployment's per-unit prices (audio seconds: ``seconds_cost``)."""
    prices = dep.unit_prices
    if not prices:
        return ZERO
    cost = ZERO
    if units.images_in and "input_cost_per_image" in prices:
        cost += prices["input_cost_per_image"] * units.images_in
    if units.images_out and "output_cost_per_image" in prices:
        cost += prices["output_cost_per_image"] * units.images_out
    if units.characters and "input_cost_per_character" in prices:
        cost += prices["input_cost_per_character"] * units.characters
    if units.search_units and "input_cost_per_query" in prices:
        cost += prices["input_cost_per_query"] * units.search_units
    return cost


def audio_cost(dep: Deployment, seconds: Decimal) -> Decimal:
    """A transcription's seconds at ``input_cost_per_second``."""
    return (dep.input_cost_per_second or ZERO) * seconds


def unit_settings(extras: JSONObject, info: JSONObject, where: str) -> dict[str, Decimal]:
    """The per-unit prices of a deployment (``litellm_params`` first, then ``model_info``), checked."""
    found: dict[str, Decimal] = {}
    for name in UNIT_PRICES:
        raw = extras.get(name, info.get(name))
        if raw is None:
            continue
        found[name] = price_setting(raw, f"{where}: {name}")
    return found


def price_setting(raw: object, label: str) -> Decimal:
    """A configured price (a number, or a string of one) as a Decimal of at least 0; ``ValueError`` naming
    ``label`` otherwise (bools, NaN, infinities, negatives)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise ValueError(f"{label} must be a number")
    try:
        value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    except ArithmeticError:
        raise ValueError(f"{label} must be a number, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{label} must be a number of at least 0")
    return value
