"""Wildcard model names and aliases."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.router.conftest import chat, client, config, start


def wildcard(name: str, model: str, api_base: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model, "api_base": api_base, **params}}


async def test_provider_wildcard_routes_the_requested_model(fakes: Any, proxy_factory: Any) -> None:
    (box,) = await fakes(1, kind="ollama")
    proxy = await start(proxy_factory, config([wildcard("ollama/*", "ollama_chat/*", box.url)]))
    c = client(proxy)
    raw = await chat(c, "ollama/llama3")
    assert raw.parse().choices[0].message.content == "Hello from the fake upstream"
    assert box.requests[-1].path == "/api/chat" and box.requests[-1].body["model"] == "llama3"
    assert raw.headers["x-litellm-model-group"] == "ollama/llama3"
    await chat(c, "ollama/qwen3:8b")
    assert box.requests[-1].body["model"] == "qwen3:8b"
    await chat(c, "ollama/llama3")
    group = proxy.runtime.router.find("ollama/llama3")
    assert group is not None and group is proxy.runtime.router.find("ollama/llama3"), "built once, then cached"
    assert len(proxy.runtime.router.deployments) == 2


async def test_catch_all_wildcard(fakes: Any, proxy_factory: Any) -> None:
    (box,) = await fakes(1, kind="ollama")
    (cloud,) = await fakes(1)
    text = config(
        [
            {"model_name": "gpt-fake", "litellm_params": {"model": "openai/gpt-fake", "api_base": cloud.api_base}},
            wildcard("*", "ollama_chat/*", box.url),
        ]
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    await chat(c, "llama3")
    assert box.requests[-1].body["model"] == "llama3"
    await chat(c, "gpt-fake")
    assert len(cloud.requests) == 1, "a configured name wins over the wildcard"
    page = await c.models.list()
    assert [m.id for m in page.data] == ["gpt-fake"]
    assert (await c.models.retrieve("llama3")).id == "llama3"


async def test_openai_wildcard_and_provider_per_request(fakes: Any, proxy_factory: Any) -> None:
    (cloud,) = await fakes(1)
    (box,) = await fakes(1, kind="ollama")
    text = config(
        [
            wildcard("openai/*", "openai/*", cloud.api_base, api_key="sk-upstream"),
            wildcard("local/*", "*", box.url),
        ]
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    await chat(c, "openai/gpt-fake-big")
    assert cloud.requests[-1].body["model"] == "gpt-fake-big"
    await chat(c, "local/ollama_chat/llama3")
    assert box.requests[-1].body["model"] == "llama3"
    with pytest.raises(openai.NotFoundError) as info:
        await chat(c, "local/nosuch/model")
    assert info.value.code == "model_not_found" and "nosuch" in info.value.message


async def test_model_group_alias(fakes: Any, proxy_factory: Any) -> None:
    (cloud,) = await fakes(1)
    text = config(
        [{"model_name": "gpt-fake", "litellm_params": {"model": "openai/gpt-fake", "api_base": cloud.api_base}}],
        router={"model_group_alias": {"fast": "gpt-fake"}},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy), "fast")
    assert raw.headers["x-litellm-model-group"] == "gpt-fake"


async def test_wildcard_with_a_provider_proxyllm_lacks_loads_and_answers_501(proxy_factory: Any) -> None:
    """As for any entry of such a provider: the config starts, the calls say why they cannot be served."""
    text = config([wildcard("x/*", "nosuch/*", "http://127.0.0.1:1")])
    proxy = await start(proxy_factory, text)
    with pytest.raises(openai.APIStatusError) as info:
        await chat(client(proxy), "x/anything")
    assert info.value.status_code == 501 and "'nosuch'" in info.value.message
