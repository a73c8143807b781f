"""LiteLLM-style config files: what loads, what warns, and what fails with a clear message."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxyllm.config.loader import WARNED_ENV, ConfigError, load_config, parse_config
from proxyllm.core.errors import StartupError
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
            "model_list[0] (model_name 'a'): litellm_params.rpm",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: os.environ/NOPE_NOT_SET}",
            "environment variable NOPE_NOT_SET, which is not set",
        ),
        ("router_settings: {num_retries: -1}", "router_settings.num_retries"),
        ("general_settings: {proxy_batch_write_at: 0}", "general_settings.proxy_batch_write_at"),
        ("general_settings: {proxy_batch_write_at: .nan}", "general_settings.proxy_batch_write_at"),
    ],
)
def test_bad_config_names_file_entry_and_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="config.yaml")
    assert expected in str(info.value)


def test_a_provider_proxyllm_lacks_loads_as_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    """LiteLLM configs mix providers: start-up goes on, with one warning naming the provider."""
    config = parse_config("model_list:\n  - model_name: a\n    litellm_params: {model: nosuch/x}", source="c.yaml")
    runtime = Runtime(config, env={"DATABASE_URL": "sqlite:///:memory:"})
    (dep,) = runtime.router.deployments
    assert dep.public_info()["available"] is False and "'nosuch'" in dep.public_info()["reason"]
    assert "provider 'nosuch' is not implemented" in caplog.text


def test_spend_is_written_as_often_as_proxy_batch_write_at_says() -> None:
    """LiteLLM's ``general_settings.proxy_batch_write_at``: seconds between batched spend writes (ours: 1 s)."""
    default = Runtime(parse_config("{}", source="c.yaml"), env={"DATABASE_URL": "sqlite:///:memory:"})
    assert default.spend.interval == 1.0
    text = "general_settings: {proxy_batch_write_at: 10}"
    assert Runtime(parse_config(text, source="c.yaml"), env={"DATABASE_URL": "sqlite:///:memory:"}).spend.interval == 10


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("/nonexistent/config.yaml")
    assert "/nonexistent/config.yaml: cannot read config file" in str(info.value)


EVERYTHING_WRONG = """
model_list:
  - model_name: a
    litellm_params: {model: openai/x, api_bse: http://x, api_key: os.environ/NOPE_ONE}
  - model_name: b
    litellm_params: {model: openai/y, rpm: lots, api_key: os.environ/NOPE_TWO}
  - model_name: c
    litelm_params: {model: openai/z}
router_settings: {num_retries: -1, routing_stratgy: least-busy}
general_settings:
  master_key: os.environ/NOPE_THREE
"""


def test_every_problem_is_reported_at_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "proxyllm.config"), pytest.raises(ConfigError) as info:
        parse_config(EVERYTHING_WRONG, source="c.yaml")
    assert info.value.problems == [
        "model_list[0] (model_name 'a'): litellm_params.api_key refers to environment variable NOPE_ONE,"
        " which is not set",
        "model_list[1] (model_name 'b'): litellm_params.api_key refers to environment variable NOPE_TWO,"
        " which is not set",
        "general_settings.master_key refers to environment variable NOPE_THREE, which is not set",
        "model_list[2] (model_name 'c'): litellm_params is missing or not a mapping"
        " (litelm_params is not a known key: a misspelling?)",
        "model_list[1] (model_name 'b'): litellm_params.rpm: Input should be a valid integer,"
        " unable to parse string as an integer",
        "router_settings.num_retries: Input should be greater than or equal to 0",
    ]
    text = str(info.value)
    assert text.startswith("c.yaml: 6 problems\n") and text.count("\n  c.yaml: ") == 6
    # The typos are named too, with the key they are closest to.
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        "c.yaml: router_settings.routing_stratgy is not a proxyllm setting and is ignored;"
        " did you mean routing_strategy?",
        "c.yaml: model_list[0] (model_name 'a'): litellm_params.api_bse is not a proxyllm setting and is ignored;"
        " did you mean api_base?",
        "c.yaml: model_list[2] (model_name 'c'): litelm_params is not a proxyllm setting and is ignored;"
        " did you mean litellm_params?",
    ]


def test_unknown_keys_far_from_any_known_one_get_no_suggestion(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "proxyllm.config"):
        parse_config("litellm_settings: {success_callback: [langfuse]}\nturbo: 1\n", source="c.yaml")
    assert [r.getMessage() for r in caplog.records] == [
        "c.yaml: turbo is not a proxyllm setting and is ignored",
        "c.yaml: litellm_settings.success_callback is not a proxyllm setting and is ignored",
    ]


def test_warnings_are_printed_once_per_process_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(WARNED_ENV, raising=False)
    file = tmp_path / "c.yaml"
    file.write_text("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_bse: y}\n")
    with caplog.at_level(logging.WARNING, "proxyllm.config"):
        load_config(file)  # the CLI's check
        load_config(file)  # the server (worker) loading the same file
    assert len(caplog.records) == 1 and "did you mean api_base?" in caplog.records[0].getMessage()


def test_cli_start_up_prints_each_warning_once_and_every_error(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(EVERYTHING_WRONG)
    env = {k: v for k, v in os.environ.items() if k != WARNED_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "proxyllm", "--config", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("did you mean api_base?") == 1
    assert f"proxyllm: {file}: 6 problems" in result.stderr
    for name in ("NOPE_ONE", "NOPE_TWO", "NOPE_THREE"):
        assert f"environment variable {name}, which is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_bad_model_entry_is_reported_in_one_start() -> None:
    text = """
model_list:
  - model_name: a
    litellm_params: {model: azure/x}
  - model_name: ok
    litellm_params: {model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:1"}
  - model_name: b
    litellm_params: {model: azure/y}
"""
    with pytest.raises(StartupError) as info:
        Runtime(parse_config(text, source="c.yaml"), env={"DATABASE_URL": "sqlite:///:memory:"})
    message = str(info.value)
    assert message.startswith("2 problems in model_list")
    assert "model_list[0] (model_name 'a')" in message and "model_list[2] (model_name 'b')" in message
