"""Router tests: fresh fake upstreams per test, config building, SDK clients, and Redis when present."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest
import yaml

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import eventually  # noqa: F401  (re-exported for the tests here)

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def namespace() -> str:
    """A key prefix no other test (or run) uses."""
    return f"proxyllm-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def fakes() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await fakes(n)`` -> n fresh FakeOpenAI servers; ``await fakes(n, kind="ollama")`` for Ollama.

    Ask for it before ``proxy_factory``: fixtures stop in reverse order, so the proxy stops first and
    closes its upstream connections. Stopped the other way round, a fake's clean-up waits (aiohttp: up to
    60 s) for a handler still serving the proxy, such as a stalled stream, until the proxy lets go."""
    started: list[FakeOpenAI | FakeOllama] = []

    async def make(n: int = 1, *, kind: str = "openai", **kwargs: Any) -> list[Any]:
        made: list[Any] = []
        for _ in range(n):
            fake = FakeOllama(**kwargs) if kind == "ollama" else FakeOpenAI(**kwargs)
            await fake.start()
            started.append(fake)
            made.append(fake)
        return made

    yield make
    for fake in started:
        await fake.stop()


def deployment(name: str, fake: FakeOpenAI | FakeOllama, model: str = "gpt-fake", **params: Any) -> dict[str, Any]:
    info = params.pop("model_info", None)
    if isinstance(fake, FakeOllama):
        litellm_params = {"model": f"ollama_chat/{model}", "api_base": fake.url}
    else:
        litellm_params = {"model": f"openai/{model}", "api_base": fake.api_base, "api_key": "sk-upstream"}
    entry: dict[str, Any] = {"model_name": name, "litellm_params": {**litellm_params, **params}}
    if info:
        entry["model_info"] = info
    return entry


def config(
    model_list: list[dict[str, Any]],
    *,
    router: dict[str, Any] | None = None,
    litellm: dict[str, Any] | None = None,
    general: dict[str, Any] | None = None,
) -> str:
    return yaml.safe_dump(
        {
            "model_list": model_list,
            "router_settings": {"num_retries": 2, **(router or {})},
            "litellm_settings": litellm or {},
            "general_settings": {"master_key": MASTER_KEY, **(general or {})},
        }
    )


async def start(proxy_factory: Any, text: str, *, seed: int | None = 1234, **kwargs: Any) -> ProxyServer:
    server: ProxyServer = await asyncio.to_thread(proxy_factory, text, **kwargs)
    if seed is not None:
        server.runtime.router.rng.seed(seed)
    return server


_clients: list[openai.AsyncOpenAI] = []


def client(proxy: ProxyServer, **kwargs: Any) -> openai.AsyncOpenAI:
    """An SDK client, closed after the test (see ``_close_clients``)."""
    kwargs.setdefault("timeout", 30)
    made = openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0, **kwargs)
    _clients.append(made)
    return made


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Close every SDK client a test made.

    Clients left to the garbage collector were seen to make a later test's requests hang (never
    answered, on a loaded machine): their pooled connections are closed whenever collection runs.
    """
    yield
    while _clients:
        await _clients.pop().close()


async def fresh_minute(needed: float = 10.0) -> None:
    """Wait for the next clock minute if this one has less than ``needed`` seconds left (rpm/tpm tests)."""
    left = 60 - time.time() % 60
    if left < needed:
        await asyncio.sleep(left + 0.05)


async def chat(c: openai.AsyncOpenAI, model: str = "m", **kwargs: Any) -> Any:
    """A chat call that returns the raw response, so headers can be checked too."""
    return await c.chat.completions.with_raw_response.create(model=model, messages=HI, **kwargs)


def dep_id(proxy: ProxyServer, fake: FakeOpenAI | FakeOllama) -> str:
    """The id of the deployment pointing at ``fake``."""
    for dep in proxy.runtime.router.deployments:
        if dep.api_base.startswith(fake.url):
            return dep.id
    raise AssertionError("no deployment for that fake")


def status(proxy: ProxyServer, fake: FakeOpenAI | FakeOllama) -> dict[str, Any]:
    router = proxy.runtime.router
    return router.status(router.stats[dep_id(proxy, fake)].dep)
