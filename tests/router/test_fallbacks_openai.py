"""Context-window and content-policy errors from OpenAI-format upstreams pick their own fallbacks.

The upstream's error body says which it is (``code``: ``context_length_exceeded``,
``content_policy_violation``); the provider's ``map_error`` turns that into the error kind the router
looks at.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.base import Action
from tests.router.conftest import chat, client, config, deployment, start

CONTEXT_ERROR = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
POLICY_ERROR = {
    "error": {
        "message": "Your request was rejected as a result of our safety system.",
        "type": "invalid_request_error",
        "param": None,
        "code": "content_policy_violation",
    }
}


async def test_context_window_error_falls_back_to_the_bigger_model(fakes: Any, proxy_factory: Any) -> None:
    small, big = await fakes(2)
    small.push(Action(status=400, body=CONTEXT_ERROR))
    text = config(
        [deployment("small", small), deployment("big", big, model="gpt-fake-big")],
        litellm={"context_window_fallbacks": [{"small": ["big"]}], "fallbacks": [{"small": ["elsewhere"]}]},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy), "small")
    assert raw.parse().choices[0].message.content == "Hello from the fake upstream"
    assert raw.headers["x-litellm-model-group"] == "big"
    assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
    assert raw.headers["x-litellm-attempted-retries"] == "0", "a context-window error is not retried"
    assert len(small.requests) == 1 and big.requests[0].body["model"] == "gpt-fake-big"


async def test_context_window_error_without_fallback_reaches_the_client(fakes: Any, proxy_factory: Any) -> None:
    (small,) = await fakes(1)
    small.push(Action(status=400, body=CONTEXT_ERROR))
    proxy = await start(proxy_factory, config([deployment("small", small)]))
    with pytest.raises(openai.BadRequestError) as info:
        await chat(client(proxy), "small")
    assert info.value.code == "context_length_exceeded"
    assert "maximum context length" in info.value.message


async def test_content_policy_fallbacks(fakes: Any, proxy_factory: Any) -> None:
    strict, lenient = await fakes(2)
    strict.push(Action(status=400, body=POLICY_ERROR))
    text = config(
        [deployment("strict", strict), deployment("lenient", lenient)],
        litellm={"content_policy_fallbacks": [{"strict": ["lenient"]}]},
    )
    proxy = await start(proxy_factory, text)
    raw = await chat(client(proxy), "strict")
    assert raw.headers["x-litellm-model-group"] == "lenient"
