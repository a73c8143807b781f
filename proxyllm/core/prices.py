"""The bundled price table for common hosted models (``data/prices.json``).

Used only where a deployment names no ``input_cost_per_token`` / ``output_cost_per_token``. A name
matches exactly or by its longest listed prefix, so dated snapshots (``gpt-4o-2024-08-06``) price as
their family. Azure deployments and OpenAI-compatible clouds are looked up by ``model_info.base_model``
or the upstream model name under the provider families that serve them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from importlib import resources

Price = tuple[Decimal, Decimal]  # (input, output) per token
FAMILIES = {
    "azure": "openai",
    "azure_ai": "openai",
    "openai_compatible": "openai",
    "custom_openai": "openai",
    "text-completion-openai": "openai",
}


@cache
def table() -> dict[str, dict[str, Price]]:
    raw = json.loads(resources.files("proxyllm.core").joinpath("data/prices.json").read_text(encoding="utf-8"))
    return {
        provider: {model: (Decimal(p[0]), Decimal(p[1])) for model, p in models.items()}
        for provider, models in raw.items()
        if not provider.startswith("_")
    }


def lookup(provider: str, model: str) -> Price | None:
    """The list price of ``model`` at ``provider``, or None when the table does not know it."""
    models = table().get(FAMILIES.get(provider, provider))
    if not models:
        return None
    name = model.rsplit("/", 1)[-1].lower()
    if name in models:
        return models[name]
    matches = [known for known in models if name.startswith(known + "-") or name.startswith(known + "@")]
    return models[max(matches, key=len)] if matches else None
