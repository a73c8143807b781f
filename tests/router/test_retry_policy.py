"""retry_policy: how many retries each class of error gets."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.router.conftest import chat, client, config, deployment, start

POLICY = {"RateLimitErrorRetries": 3, "InternalServerErrorRetries": 0, "BadRequestErrorRetries": 0}


async def test_retries_follow_the_error_class(fakes: Any, proxy_factory: Any) -> None:
    (only,) = await fakes(1)
    text = config([deployment("m", only)], router={"retry_policy": POLICY, "allowed_fails": 100})
    proxy = await start(proxy_factory, text)
    c = client(proxy)

    only.fail(500, "boom")
    with pytest.raises(openai.InternalServerError):
        await chat(c)
    assert len(only.requests) == 1, "InternalServerErrorRetries 0"

    only.requests.clear()
    only.fail(429, "slow down", times=3, retry_after="0")
    raw = await chat(c)
    assert raw.headers["x-litellm-attempted-retries"] == "3"
    assert len(only.requests) == 4

    only.requests.clear()
    only.fail(503, "overloaded", times=2)  # UNAVAILABLE counts as an internal server error
    with pytest.raises(openai.APIStatusError):
        await chat(c)
    assert len(only.requests) == 1


async def test_timeouts_default_to_num_retries(fakes: Any, proxy_factory: Any) -> None:
    (only,) = await fakes(1)
    only.fail(504, "gateway timeout", times=2)
    text = config([deployment("m", only)], router={"retry_policy": {"RateLimitErrorRetries": 5}, "num_retries": 2})
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy))
    assert raw.headers["x-litellm-attempted-retries"] == "2"


def test_unknown_retry_policy_entry_is_a_startup_error() -> None:
    from proxyllm.config.loader import parse_config
    from proxyllm.core.errors import StartupError
    from proxyllm.server.runtime import Runtime

    with pytest.raises(StartupError) as info:
        Runtime(parse_config("router_settings:\n  retry_policy: {TeapotErrorRetries: 1}\n"), env={})
    assert "TeapotErrorRetries" in str(info.value) and "RateLimitErrorRetries" in str(info.value)
