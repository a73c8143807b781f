"""Fallbacks: any failure, context window, content policy, defaults, per request, and their limits."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.base import Action
from tests.router.conftest import HI, chat, client, config, deployment, start


async def test_ollama_prompt_too_long_falls_back(fakes: Any, proxy_factory: Any) -> None:
    (box,) = await fakes(1, kind="ollama")
    (cloud,) = await fakes(1)
    box.push(Action(status=400, body={"error": "prompt too long; exceeded max context length by 904 tokens"}))
    text = config(
        [deployment("local", box, model="llama3"), deployment("cloud", cloud)],
        router={"context_window_fallbacks": [{"local": ["cloud"]}]},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy), "local")
    assert raw.headers["x-litellm-model-group"] == "cloud"
    assert len(box.requests) == 1 and len(cloud.requests) == 1


async def test_pre_call_checks_skip_deployments_the_prompt_does_not_fit(fakes: Any, proxy_factory: Any) -> None:
    small, big = await fakes(2)
    text = config(
        [
            deployment("small", small, model_info={"max_input_tokens": 20}),
            deployment("big", big, model_info={"max_input_tokens": 100000}),
        ],
        router={"enable_pre_call_checks": True, "context_window_fallbacks": [{"small": ["big"]}]},
    )
    proxy = await start(proxy_factory, text)
    c = client(proxy)
    await chat(c, "small")  # short: fits
    long = [{"role": "user", "content": "lorem ipsum " * 40}]
    raw = await c.chat.completions.with_raw_response.create(model="small", messages=long)
    assert raw.headers["x-litellm-model-group"] == "big"
    assert len(small.requests) == 1, "the long prompt never went to the small model"


async def test_generic_fallback_after_retries(fakes: Any, proxy_factory: Any) -> None:
    broken, backup = await fakes(2)
    broken.failure_rate = 1.0
    text = config(
        [deployment("m", broken), deployment("backup", backup)],
        router={"num_retries": 2, "fallbacks": [{"m": ["backup"]}], "allowed_fails": 10},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy))
    assert raw.headers["x-litellm-attempted-retries"] == "2"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert raw.headers["x-litellm-model-group"] == "backup"
    assert len(broken.requests) == 3


async def test_default_fallbacks_apply_to_groups_without_their_own(fakes: Any, proxy_factory: Any) -> None:
    broken, backup = await fakes(2)
    broken.failure_rate = 1.0
    text = config(
        [deployment("m", broken), deployment("backup", backup)],
        router={"num_retries": 0},
        litellm={"default_fallbacks": ["backup"]},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy))
    assert raw.headers["x-litellm-model-group"] == "backup"


async def test_request_fallbacks_override_the_config(fakes: Any, proxy_factory: Any) -> None:
    broken, configured, asked = await fakes(3)
    broken.failure_rate = 1.0
    text = config(
        [deployment("m", broken), deployment("configured", configured), deployment("asked", asked)],
        router={"num_retries": 0, "fallbacks": [{"m": ["configured"]}]},
    )
    proxy = await start(proxy_factory, text)
    raw = await client(proxy).chat.completions.with_raw_response.create(
        model="m", messages=HI, extra_body={"fallbacks": ["asked"]}
    )
    assert raw.headers["x-litellm-model-group"] == "asked"
    assert not configured.requests


async def test_max_fallbacks_and_the_final_error_lists_every_attempt(fakes: Any, proxy_factory: Any) -> None:
    a, b, c_ = await fakes(3)
    a.failure_rate = b.failure_rate = 1.0
    text = config(
        [deployment("m", a), deployment("b", b), deployment("c", c_)],
        router={"num_retries": 0, "max_fallbacks": 1, "fallbacks": [{"m": ["b", "c"]}]},
    )
    proxy = await start(proxy_factory, text)
    with pytest.raises(openai.InternalServerError) as info:
        await chat(client(proxy))
    assert not c_.requests, "max_fallbacks 1: the second fallback is not tried"
    assert "all 2 attempts failed" in info.value.message
    assert info.value.response.headers["x-litellm-attempted-fallbacks"] == "1"


async def test_bad_request_is_not_retried_nor_fallen_back(fakes: Any, proxy_factory: Any) -> None:
    picky, backup = await fakes(2)
    picky.fail(400, "temperature must be <= 2")
    text = config([deployment("m", picky), deployment("backup", backup)], router={"fallbacks": [{"m": ["backup"]}]})
    proxy = await start(proxy_factory, text)
    with pytest.raises(openai.BadRequestError) as info:
        await chat(client(proxy))
    assert "temperature" in info.value.message
    assert len(picky.requests) == 1 and not backup.requests


async def test_unknown_fallback_group_is_skipped(fakes: Any, proxy_factory: Any) -> None:
    broken, backup = await fakes(2)
    broken.failure_rate = 1.0
    text = config(
        [deployment("m", broken), deployment("backup", backup)],
        router={"num_retries": 0, "fallbacks": [{"m": ["nope", "backup"]}]},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy))
    assert raw.headers["x-litellm-model-group"] == "backup"
