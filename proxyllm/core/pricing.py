"""What a call cost, in exact decimal dollars (never a float)."""

from __future__ import annotations

from decimal import Decimal

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
