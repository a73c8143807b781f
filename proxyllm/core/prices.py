"""The bundled price table for common hosted models (``data/prices.json``).

Used only where a deployment names no ``input_cost_per_token`` / ``output_cost_per_token`` (and, for
prompt-cache tokens, no ``cache_read_input_token_cost`` / ``cache_creation_input_token_cost``). A name
matches exactly or by its longest listed prefix, so dated snapshots (``gpt-4o-2024-08-06``) price as
their family. Azure deployments and OpenAI-compatible clouds are looked up by ``model_info.base_model``
or the upstream model name under the provider families that serve them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import TypeVar

Price = tuple[Decimal, Decimal]  # (input, output) per token
T = TypeVar("T")
CachePrice = tuple[Decimal | None, Decimal | None]  # (cache read, cache creation) per token; None: not listed
FAMILIES = {
    "azure": "openai",
    "azure_ai": "openai",
    "openai_compatible": "openai",
    "custom_openai": "openai",
    "text-completion-openai": "openai",
}


@cache
def _raw() -> dict[str, dict[str, list[str | None]]]:
    raw = json.loads(resources.files("proxyllm.core").joinpath("data/prices.json").read_text(encoding="utf-8"))
    return {provider: models for provider, models in raw.items() if not provider.startswith("_")}


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@cache
def table() -> dict[str, dict[str, Price]]:
    return {
        provider: {model: (Decimal(str(p[0])), Decimal(str(p[1]))) for model, p in models.items()}
        for provider, models in _raw().items()
    }


@cache
def cache_table() -> dict[str, dict[str, CachePrice]]:
    """Prompt-cache prices: the optional third (read) and fourth (creation) entries of a listed model."""
    return {
        provider: {model: (_decimal(p[2]), _decimal(p[3])) for model, p in models.items() if len(p) == 4}
        for provider, models in _raw().items()
    }


def lookup(provider: str, model: str) -> Price | None:
    """The list price of ``model`` at ``provider``, or None when the table does not know it."""
    return _find(table(), provider, model)


def lookup_cache(provider: str, model: str) -> CachePrice | None:
    """The prompt-cache prices of ``model`` at ``provider``, or None when the table lists none."""
    return _find(cache_table(), provider, model)


def _find(tables: dict[str, dict[str, T]], provider: str, model: str) -> T | None:
    models = tables.get(FAMILIES.get(provider, provider))
    if not models:
        return None
    name = model.rsplit("/", 1)[-1].lower()
    if name in models:
        return models[name]
    matches = [known for known in models if name.startswith(known + "-") or name.startswith(known + "@")]
    return models[max(matches, key=len)] if matches else None
