"""The bundled price table prices hosted models a config leaves unpriced; a deployment's own prices win."""

from __future__ import annotations

from decimal import Decimal

from proxyllm.config.loader import parse_config
from proxyllm.core import prices
from proxyllm.server.runtime import Runtime


def test_lookup_exact_dated_and_longest_prefix() -> None:
    assert prices.lookup("openai", "gpt-4o") == (Decimal("0.0000025"), Decimal("0.00001"))
    assert prices.lookup("openai", "gpt-4o-2024-08-06") == prices.lookup("openai", "gpt-4o")
    assert prices.lookup("openai", "gpt-4o-mini-2024-07-18") == (Decimal("0.00000015"), Decimal("0.0000006"))
    assert prices.lookup("anthropic", "claude-sonnet-4-20250514") == (Decimal("0.000003"), Decimal("0.000015"))
    assert prices.lookup("azure", "gpt-4.1-mini") == (Decimal("0.0000004"), Decimal("0.0000016"))
    assert prices.lookup("openai", "gpt-4omni") is None
    assert prices.lookup("ollama_chat", "llama3") is None
    assert prices.lookup("nosuch", "gpt-4o") is None


def test_deployments_take_listed_prices_unless_they_set_their_own() -> None:
    config = parse_config("""
model_list:
  - model_name: listed
    litellm_params: {model: openai/gpt-4o-mini, api_key: x}
  - model_name: own
    litellm_params: {model: openai/gpt-4o-mini, api_key: x, input_cost_per_token: 0.000001, output_cost_per_token: 0}
  - model_name: azure-base
    litellm_params: {model: azure/my-deployment, api_base: "https://x.openai.azure.com", api_key: x}
    model_info: {base_model: gpt-4o}
  - model_name: local
    litellm_params: {model: ollama_chat/llama3}
""")
    deps = {d.model_name: d for d in Runtime(config, env={"DATABASE_URL": "sqlite:///:memory:"}).deployments}
    assert (deps["listed"].input_cost_per_token, deps["listed"].output_cost_per_token) == (
        Decimal("0.00000015"),
        Decimal("0.0000006"),
    )
    assert (deps["own"].input_cost_per_token, deps["own"].output_cost_per_token) == (Decimal("0.000001"), Decimal(0))
    assert deps["azure-base"].input_cost_per_token == Decimal("0.0000025")
    assert deps["local"].input_cost_per_token is None
