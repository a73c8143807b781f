"""What a call cost, in exact decimal dollars (never a float)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from proxyllm.core.deployment import Deployment
from proxyllm.core.types import Usage

ZERO = Decimal(0)


def call_cost(dep: Deployment, usage: Usage | None) -> Decimal:
    if usage is None:
        return ZERO
    cost = ZERO
    if dep.input_cost_per_token:
        cost += dep.input_cost_per_token * usage.prompt_tokens
    if dep.output_cost_per_token:
        cost += dep.output_cost_per_token * usage.completion_tokens
    return cost


def format_cost(cost: Decimal) -> str:
    return format(cost.normalize(), "f") if cost else "0"


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
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
