"""Prompt-cache tokens at their own prices: read from each provider's usage, priced from the deployment,
its model_info or the bundled table, and bounded by the admission step's worst case."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proxyllm.config.loader import parse_config
from proxyllm.core import prices
from proxyllm.core.admission import worst_case_cost
from proxyllm.core.pricing import call_cost
from proxyllm.core.types import Usage
from proxyllm.providers.anthropic.common import usage_of as anthropic_usage
from proxyllm.providers.gemini.response import usage_of as gemini_usage
from proxyllm.server.runtime import Runtime

CONFIG = """
model_list:
  - model_name: listed-claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: x}
  - model_name: listed-gpt
    litellm_params: {model: openai/gpt-4o-mini, api_key: x}
  - model_name: own
    litellm_params:
      model: openai/my-model
      api_key: x
      input_cost_per_token: 0.000002
      output_cost_per_token: 0.000008
      cache_read_input_token_cost: 0.0000005
    model_info:
      cache_creation_input_token_cost: 0.0000025
  - model_name: own-no-cache-price
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: x, input_cost_per_token: 0.000001,
                     output_cost_per_token: 0.000002}
  - model_name: params-win
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: x, cache_read_input_token_cost: 0.00000001}
    model_info: {cache_read_input_token_cost: 0.5}
"""


@pytest.fixture(scope="module")
def deps() -> dict[str, object]:
    config = parse_config(CONFIG)
    return {d.model_name: d for d in Runtime(config, env={"DATABASE_URL": "sqlite:///:memory:"}).deployments}


def test_the_table_lists_cache_prices() -> None:
    assert prices.lookup_cache("anthropic", "claude-sonnet-4-20250514") == (Decimal("0.0000003"), Decimal("0.00000375"))
    assert prices.lookup_cache("openai", "gpt-4o-mini-2024-07-18") == (Decimal("0.000000075"), None)
    assert prices.lookup_cache("openai", "gpt-3.5-turbo") is None
    assert prices.lookup("anthropic", "claude-sonnet-4-5") == (Decimal("0.000003"), Decimal("0.000015"))


def test_deployments_take_cache_prices_from_params_model_info_or_the_table(deps: dict[str, object]) -> None:
    claude, gpt, own = deps["listed-claude"], deps["listed-gpt"], deps["own"]
    assert (claude.cache_read_input_token_cost, claude.cache_creation_input_token_cost) == (  # type: ignore[attr-defined]
        Decimal("0.0000003"),
        Decimal("0.00000375"),
    )
    assert (gpt.cache_read_input_token_cost, gpt.cache_creation_input_token_cost) == (Decimal("0.000000075"), None)  # type: ignore[attr-defined]
    assert (own.cache_read_input_token_cost, own.cache_creation_input_token_cost) == (  # type: ignore[attr-defined]
        Decimal("0.0000005"),
        Decimal("0.0000025"),
    )
    no_cache = deps["own-no-cache-price"]
    assert (no_cache.cache_read_input_token_cost, no_cache.cache_creation_input_token_cost) == (None, None)  # type: ignore[attr-defined]
    assert deps["params-win"].cache_read_input_token_cost == Decimal("0.00000001")  # type: ignore[attr-defined]


def test_a_negative_cache_price_stops_start_up() -> None:
    with pytest.raises(Exception, match="cache_read_input_token_cost"):
        parse_config(
            "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, cache_read_input_token_cost: -1}\n"
        )


def test_each_kind_of_prompt_token_at_its_own_price(deps: dict[str, object]) -> None:
    own = deps["own"]
    usage = Usage(1000, 100, cached_tokens=600, cache_creation_tokens=300)
    expected = 100 * Decimal("0.000002") + 600 * Decimal("0.0000005") + 300 * Decimal("0.0000025")
    assert call_cost(own, usage) == expected + 100 * Decimal("0.000008")  # type: ignore[arg-type]
    without = deps["own-no-cache-price"]
    assert call_cost(without, usage) == 1000 * Decimal("0.000001") + 100 * Decimal("0.000002")  # type: ignore[arg-type]
    # OpenAI reports reads only: the rest of the prompt at the input price
    gpt = deps["listed-gpt"]
    read_only = Usage.from_openai(
        {"prompt_tokens": 1000, "completion_tokens": 0, "prompt_tokens_details": {"cached_tokens": 800}}
    )
    assert read_only == Usage(1000, 0, cached_tokens=800)
    assert call_cost(gpt, read_only) == 200 * Decimal("0.00000015") + 800 * Decimal("0.000000075")  # type: ignore[arg-type]


def test_usage_of_every_provider_carries_its_cache_tokens() -> None:
    anthropic = {
        "input_tokens": 5,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "output_tokens": 3,
    }
    assert anthropic_usage(anthropic) == Usage(125, 3, cached_tokens=100, cache_creation_tokens=20)
    assert anthropic_usage({"input_tokens": -5, "cache_read_input_tokens": "9", "output_tokens": True}) == Usage(0, 0)
    gemini = {"usageMetadata": {"promptTokenCount": 50, "cachedContentTokenCount": 40, "candidatesTokenCount": 2}}
    assert gemini_usage(gemini) == Usage(50, 2, cached_tokens=40)
    hostile = {"usageMetadata": {"promptTokenCount": 5, "cachedContentTokenCount": 40}}
    assert gemini_usage(hostile).cached_tokens == 5
    litellm_shape = {"prompt_tokens": 30, "completion_tokens": 1, "cache_creation_input_tokens": 10}
    assert Usage.from_openai(litellm_shape) == Usage(30, 1, cache_creation_tokens=10)
    too_many = {"prompt_tokens": 30, "completion_tokens": 1, "cache_creation_input_tokens": 99}
    assert Usage.from_openai(too_many) == Usage(30, 1)


def test_worst_case_covers_writing_the_whole_prompt_to_the_cache(deps: dict[str, object]) -> None:
    claude = deps["listed-claude"]
    worst = worst_case_cost([claude], 1000, 0)  # type: ignore[list-item]
    assert worst == 1000 * Decimal("0.00000375")
    assert call_cost(claude, Usage(1000, 0, cache_creation_tokens=1000)) <= worst  # type: ignore[arg-type]
