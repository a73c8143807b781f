"""proxy_server_config.railway.yaml loads with the proxy's own loader and builds a Runtime."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from proxyllm.config.loader import ConfigError, load_config, parse_config
from proxyllm.server.runtime import Runtime
from tests.deploy.conftest import RAILWAY_CONFIG

TAILNET_PROXY = "http://127.0.0.1:1055"
ENV_REFERENCE = re.compile(r"^[^#\n]*os\.environ/([A-Z0-9_]+)", re.MULTILINE)


@pytest.fixture
def railway_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    env = {
        "LITELLM_MASTER_KEY": "sk-master-from-railway",
        "DATABASE_URL": f"sqlite:///{tmp_path}/proxyllm.db",
        "OPENAI_API_KEY": "sk-openai-from-railway",
        "ANTHROPIC_API_KEY": "sk-ant-from-railway",
        "LITELLM_SALT_KEY": "salt-from-railway-0123456789abcdef",  # store_model_in_db needs it
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**env, "TAILNET_PROXY_URL": TAILNET_PROXY}


def environment_references(text: str) -> set[str]:
    """The variables a config reads through ``os.environ/NAME`` outside comments."""
    return set(ENV_REFERENCE.findall(text))


def test_the_railway_config_loads_and_every_ollama_model_goes_through_the_tailnet(
    railway_env: dict[str, str],
) -> None:
    config = load_config(RAILWAY_CONFIG)
    runtime = Runtime(config, env=railway_env)

    assert config.general_settings.master_key == "sk-master-from-railway"
    assert config.general_settings.database_url == railway_env["DATABASE_URL"]
    assert not runtime.auth.open
    entries = {e.model_name: e.litellm_params for e in config.model_list}
    assert entries["llama3"].model == "ollama_chat/llama3"  # chat through /api/chat
    assert entries["llama3-generate"].model == "ollama/llama3"  # through /api/generate
    assert entries["nomic-embed-text"].model == "ollama/nomic-embed-text"
    assert entries["ollama/*"].model == "ollama_chat/*"
    assert all(p.api_base == "http://hugo:11434" for p in entries.values())

    built = {d.model_name: d for d in runtime.deployments}
    assert {"llama3", "qwen3:8b", "llama3-generate", "nomic-embed-text"} <= set(built)
    assert {d.provider.name for d in built.values()} == {"ollama_chat", "ollama"}
    assert all(d.proxy_url == TAILNET_PROXY for d in built.values())
    assert all(d.api_key is None for d in built.values())
    assert environment_references(RAILWAY_CONFIG.read_text()) == {"LITELLM_MASTER_KEY", "DATABASE_URL"}


def test_without_tailscale_the_ollama_models_go_direct(railway_env: dict[str, str]) -> None:
    env = {k: v for k, v in railway_env.items() if k != "TAILNET_PROXY_URL"}
    runtime = Runtime(load_config(RAILWAY_CONFIG), env=env)
    assert all(d.proxy_url is None for d in runtime.deployments)


@pytest.mark.parametrize("missing", ["LITELLM_MASTER_KEY", "DATABASE_URL"])
def test_the_railway_config_fails_closed_without_its_secrets(
    railway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigError, match=f"environment variable {missing}, which is not set"):
        load_config(RAILWAY_CONFIG)


def uncomment_examples(text: str) -> str:
    """The config with its commented hosted-provider examples and fallbacks switched on."""
    lines = text.splitlines()

    def uncomment(first: str, stop: str) -> None:
        start = next(i for i, line in enumerate(lines) if line.startswith(first))
        end = next(i for i in range(start, len(lines)) if lines[i].startswith(stop))
        for i in range(start, end):
            if lines[i].strip():
                assert lines[i].startswith("  # "), lines[i]
                lines[i] = "  " + lines[i][4:]

    uncomment("  # - model_name: gpt-4o-mini", "litellm_settings:")
    uncomment("  # fallbacks:", "router_settings:")
    return "\n".join(lines) + "\n"


def test_the_commented_hosted_fallbacks_work_once_uncommented(railway_env: dict[str, str]) -> None:
    text = uncomment_examples(RAILWAY_CONFIG.read_text())
    config = parse_config(text, source="railway-with-examples")
    runtime = Runtime(config, env=railway_env)

    hosted = {d.model_name: d for d in runtime.deployments if d.model_name in ("gpt-4o-mini", "claude-sonnet")}
    assert set(hosted) == {"gpt-4o-mini", "claude-sonnet"}
    assert hosted["gpt-4o-mini"].api_key == "sk-openai-from-railway"
    assert hosted["claude-sonnet"].api_key == "sk-ant-from-railway"
    assert all(d.proxy_url is None for d in hosted.values())  # hosted providers never use the tailnet
    assert runtime.router_policy().fallbacks["llama3"] == ["gpt-4o-mini"]
    assert environment_references(text) == {"LITELLM_MASTER_KEY", "DATABASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
