"""LiteLLM-style config files: what loads, what warns, and what fails with a clear message."""

from __future__ import annotations

import logging

import pytest

from proxyllm.config.loader import ConfigError, load_config, parse_config
from proxyllm.server.deployments import StartupError
from proxyllm.server.runtime import Runtime

GOOD = """
model_list:
  - model_name: chat
    litellm_params:
      model: ollama_chat/llama3
      api_base: http://hugo:11434
      api_key: os.environ/TEST_OLLAMA_KEY
      rpm: 60
      weight: 2
      temperature: 0.1
      input_cost_per_token: 0.0000001
    model_info: {id: chat-1, mode: chat}
litellm_settings:
  drop_params: true
  num_retries: 3
  fallbacks: [{"chat": ["other"]}]
  success_callback: ["langfuse"]
router_settings:
  routing_strategy: simple-shuffle
  model_group_alias: {"gpt-4": "chat"}
general_settings:
  master_key: os.environ/TEST_MASTER
  alerting: ["slack"]
environment_variables:
  TEST_FROM_FILE: "yes"
"""


def test_litellm_config_loads(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TEST_OLLAMA_KEY", "ollama-secret")
    monkeypatch.setenv("TEST_MASTER", "sk-master")
    with caplog.at_level(logging.WARNING, "proxyllm.config"):
        config = parse_config(GOOD, source="config.yaml")
    warned = caplog.text
    assert "litellm_settings.success_callback" in warned and "general_settings.alerting" in warned
    assert "temperature" not in warned  # a per-deployment request default, not an unknown key
    runtime = Runtime(config, env={"DATABASE_URL": "sqlite:///:memory:"})
    dep = runtime.router.deployments[0]
    assert (dep.id, dep.api_key, dep.weight, dep.rpm, dep.drop_params) == ("chat-1", "ollama-secret", 2, 60, True)
    assert dep.request_defaults == {"temperature": 0.1}
    assert runtime.auth.master_key == "sk-master"
    assert runtime.router.policy.num_retries == 3 and runtime.router.policy.fallbacks == {"chat": ["other"]}
    assert runtime.router.find("gpt-4") is runtime.router.find("chat")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model_list: [\n  - oops", "config.yaml: invalid YAML"),
        ("- just\n- a list", "the top level must be a mapping"),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {api_base: x}",
            "model_list[0] (model_name 'a'): litellm_params.model is missing",
        ),
        ("model_list:\n  - model_name: a", "model_list[0] (model_name 'a'): litellm_params is missing"),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, rpm: lots}",
            "model_list[0] (model_name 'a') litellm_params.rpm",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: os.environ/NOPE_NOT_SET}",
            "environment variable NOPE_NOT_SET, which is not set",
        ),
        ("router_settings: {num_retries: -1}", "router_settings.num_retries"),
    ],
)
def test_bad_config_names_file_entry_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="config.yaml")
    assert expected in str(info.value)


def test_unknown_provider_is_a_startup_error() -> None:
    config = parse_config("model_list:\n  - model_name: a\n    litellm_params: {model: nosuch/x}", source="c.yaml")
    with pytest.raises(StartupError) as info:
        Runtime(config, env={"DATABASE_URL": "sqlite:///:memory:"})
    assert "c.yaml: model_list[0] (model_name 'a')" in str(info.value) and "unknown provider 'nosuch'" in str(
        info.value
    )


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/config.yaml")
    assert "/nonexistent/config.yaml: cannot read config file" in str(info.value)
