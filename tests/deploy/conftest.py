"""Fixtures for the deployment tests: the tailnet forward proxy and the shipped Railway config."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.forward_proxy import ForwardProxy
from tests.fakes.ollama_upstream import FakeOllama

REPO = Path(__file__).resolve().parents[2]
RAILWAY_CONFIG = REPO / "proxy_server_config.railway.yaml"
HUGO = "hugo:11434"


@pytest.fixture
async def tailnet_proxy(ollama_upstream: FakeOllama) -> AsyncIterator[ForwardProxy]:
    """tailscaled's stand-in: the only thing that knows where hugo is (the fake Ollama on loopback)."""
    proxy = ForwardProxy({HUGO: ("127.0.0.1", ollama_upstream.port)})
    await proxy.start()
    yield proxy
    await proxy.stop()


def railway_config_with(*entries: dict[str, Any]) -> str:
    """The shipped Railway config with extra model_list entries (e.g. a hosted provider's fake)."""
    config = yaml.safe_load(RAILWAY_CONFIG.read_text())
    config["model_list"].extend(entries)
    return yaml.safe_dump(config, sort_keys=False)
