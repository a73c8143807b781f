"""Limits tests: proxies with virtual keys, Redis when asked for, and a clock kept away from minute ends."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import openai
import pytest
import redis
import yaml

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import eventually, new_key, sdk  # noqa: F401  (re-exported for the tests here)

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis key prefix no other test (or run) uses; its keys are deleted afterwards."""
    name = f"proxyllm-test-{uuid.uuid4().hex[:12]}"
    yield name
    delete_namespace(name)


@pytest.fixture(scope="module")
def module_namespace() -> Iterator[str]:
    """``namespace`` for proxies one module shares."""
    name = f"proxyllm-test-{uuid.uuid4().hex[:12]}"
    yield name
    delete_namespace(name)


def delete_namespace(name: str) -> None:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        keys = list(client.scan_iter(f"{name}*"))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


def limits_config(
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    *,
    general: dict[str, Any] | None = None,
    router: dict[str, Any] | None = None,
    litellm: dict[str, Any] | None = None,
) -> str:
    """gpt-fake (priced), embed-fake and llama3, the master key, no retries, plus the given settings."""
    return yaml.safe_dump(
        {
            "model_list": [
                {
                    "model_name": "gpt-fake",
                    "litellm_params": {
                        "model": "openai/gpt-fake",
                        "api_base": openai_upstream.api_base,
                        "api_key": "sk-upstream-secret",
                        "input_cost_per_token": 0.000001,
                        "output_cost_per_token": 0.000002,
                    },
                },
                {
                    "model_name": "embed-fake",
                    "litellm_params": {"model": "openai/embed-fake", "api_base": openai_upstream.api_base},
                },
                {
                    "model_name": "llama3",
                    "litellm_params": {"model": "ollama_chat/llama3", "api_base": ollama_upstream.url},
                },
            ],
            "general_settings": {"master_key": MASTER_KEY, **(general or {})},
            "router_settings": {"num_retries": 0, **(router or {})},
            "litellm_settings": litellm or {},
        }
    )


async def start(proxy_factory: Any, config: str, **kwargs: Any) -> ProxyServer:
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config, **kwargs)
    return server


async def away_from_minute_end(margin: float = 8.0, clock: ModuleType | None = None) -> None:
    """Limits count per clock minute: start a burst early enough in a minute that it fits in it. With the
    proxy's clock (limits kept in this process), time is moved to the next minute instead of waited for;
    limits kept in Redis follow Redis's clock, so those tests wait."""
    now = clock.time() if clock is not None else time.time()
    left = 60 - now % 60
    if left < margin:
        if clock is not None:
            clock.advance(left + 0.2)
        else:
            await asyncio.sleep(left + 0.2)


async def chat_status(client: openai.AsyncOpenAI, model: str = "gpt-fake", **kwargs: Any) -> int:
    """200, or the status of the refusal (the exception's response is kept for inspection by callers)."""
    try:
        await client.chat.completions.create(model=model, messages=HI, **kwargs)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200
