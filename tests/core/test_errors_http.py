"""Bad input and upstream failures come back in the OpenAI error shape with the right status."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ProxyServer
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def assert_error(resp: httpx.Response, status: int, *, param: str | None = None) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    # OpenAI's four fields; after several failed attempts, each of them too (machine-readable)
    assert {"message", "type", "param", "code"} <= set(error) <= {"message", "type", "param", "code", "attempts"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    assert "Traceback" not in resp.text
    assert resp.headers["x-litellm-call-id"]
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b"", None),
        (b'{"messages": []}', "model"),
        (b'{"model": "gpt-fake"}', "messages"),
        (b'{"model": "gpt-fake", "messages": []}', "messages"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "gpt-fake", "messages": [{"role": "king", "content": "x"}]}', "messages[0].role"),
        (b'{"model": "gpt-fake", "messages": ["hi"]}', "messages[0]"),
        (b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}', "max_tokens"),
        (b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}], "max_tokens": true}', "max_tokens"),
        (b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "temperature"),
        (b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
        (b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}], "timeout": -1}', "timeout"),
        (b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "x"}], "fallbacks": "b"}', "fallbacks"),
    ],
)
async def test_malformed_requests_are_400(shared_admin: httpx.AsyncClient, content: bytes, param: str | None) -> None:
    resp = await shared_admin.post(CHAT, content=content, headers={"content-type": "application/json"})
    error = assert_error(resp, 400, param=param)
    assert error["type"] == "invalid_request_error"


async def test_embeddings_and_completions_validate_too(shared_admin: httpx.AsyncClient) -> None:
    assert_error(await shared_admin.post("/v1/embeddings", json={"model": "nomic"}), 400, param="input")
    assert_error(await shared_admin.post("/v1/embeddings", json={"model": "nomic", "input": []}), 400, param="input")
    assert_error(await shared_admin.post("/v1/completions", json={"model": "llama3"}), 400, param="prompt")
    assert_error(await shared_admin.post("/v1/embeddings", json={"model": "nomic", "input": "x", "stream": True}), 400)


async def test_missing_key_is_401(shared_proxy: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=shared_proxy.url) as anon:
        error = assert_error(await anon.post(CHAT, json={"model": "gpt-fake", "messages": HI}), 401)
        assert error["type"] == "authentication_error"
        assert_error(await anon.get("/v1/models"), 401)
        assert_error(await anon.get("/health"), 401)


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "api-key"])
async def test_key_accepted_in_each_header(shared_proxy: ProxyServer, header: str) -> None:
    from tests.conftest import MASTER_KEY

    value = f"Bearer {MASTER_KEY}" if header == "authorization" else MASTER_KEY
    async with httpx.AsyncClient(base_url=shared_proxy.url, headers={header: value}) as client:
        assert (await client.post(CHAT, json={"model": "gpt-fake", "messages": HI})).status_code == 200


async def test_body_over_the_limit_is_413(
    proxy_factory: object, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    import asyncio

    from tests.conftest import MASTER_KEY, standard_config

    config = standard_config(openai_upstream.api_base, ollama_upstream.url).replace(
        "general_settings:\n", "general_settings:\n  max_request_size_mb: 0.01\n"
    )
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config)  # type: ignore[arg-type]
    big = [{"role": "user", "content": "x" * 20_000}]
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as client:
        assert_error(await client.post(CHAT, json={"model": "gpt-fake", "messages": big}), 413)

        async def chunked() -> object:
            for _ in range(30):
                yield b"x" * 1000

        resp = await client.post(CHAT, content=chunked(), headers={"content-type": "application/json"})
        assert_error(resp, 413)
        assert (await client.post(CHAT, json={"model": "gpt-fake", "messages": HI})).status_code == 200


async def test_unknown_path_and_method(shared_admin: httpx.AsyncClient) -> None:
    assert_error(await shared_admin.get("/v1/nope"), 404)
    resp = await shared_admin.get(CHAT)
    assert resp.status_code == 405 and resp.json()["error"]["message"]


async def test_connect_failure_is_502_and_timeout_504(proxy_factory: object) -> None:
    import asyncio

    from tests.conftest import MASTER_KEY
    from tests.fakes.base import free_port

    dead = free_port()
    config = f"""
model_list:
  - model_name: dead
    litellm_params: {{model: openai/x, api_base: "http://127.0.0.1:{dead}/v1"}}
general_settings: {{master_key: {MASTER_KEY}}}
router_settings: {{num_retries: 0}}
"""
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config)  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as client:
        error = assert_error(await client.post(CHAT, json={"model": "dead", "messages": HI}), 502)
        assert error["type"] == "api_connection_error"


async def test_timeout_is_504(http: httpx.AsyncClient, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.push(*[Action(delay=2) for _ in range(3)])
    resp = await http.post(CHAT, json={"model": "gpt-fake", "messages": HI, "timeout": 0.3})
    error = assert_error(resp, 504)
    assert error["type"] == "timeout"


async def test_retries_then_success_and_headers(http: httpx.AsyncClient, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.fail(503, "warming up", times=2)
    resp = await http.post(CHAT, json={"model": "gpt-fake", "messages": HI})
    assert resp.status_code == 200
    assert resp.headers["x-litellm-attempted-retries"] == "2"
    assert resp.headers["x-litellm-model-group"] == "gpt-fake"
    assert len(resp.headers["x-litellm-model-id"]) == 32


async def test_429_retry_after_is_honoured(http: httpx.AsyncClient, openai_upstream: FakeOpenAI) -> None:
    import time

    openai_upstream.fail(429, "slow down", retry_after="1")
    started = time.monotonic()
    resp = await http.post(CHAT, json={"model": "gpt-fake", "messages": HI})
    assert resp.status_code == 200
    assert time.monotonic() - started >= 1.0


async def test_all_attempts_failed_lists_each(http: httpx.AsyncClient, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.fail(500, "kaput", times=3)
    error = assert_error(await http.post(CHAT, json={"model": "gpt-fake", "messages": HI}), 500)
    assert str(error["message"]).startswith("all 3 attempts failed")
    assert str(error["message"]).count("kaput") == 3


async def test_fallback_to_another_group(
    http: httpx.AsyncClient, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> None:
    openai_upstream.fail(500, "down", times=3)
    resp = await http.post(CHAT, json={"model": "gpt-fake", "messages": HI, "fallbacks": ["llama3"]})
    assert resp.status_code == 200
    assert resp.headers["x-litellm-attempted-fallbacks"] == "1"
    assert resp.headers["x-litellm-model-group"] == "llama3"
    assert ollama_upstream.requests[-1].path == "/api/chat"


async def test_unsupported_param_named_or_dropped(shared_admin: httpx.AsyncClient, ollama_upstream: FakeOllama) -> None:
    body = {"model": "llama3", "messages": HI, "logprobs": True}
    error = assert_error(await shared_admin.post(CHAT, json=body), 400, param="logprobs")
    assert error["code"] == "unsupported_params"
    assert (await shared_admin.post(CHAT, json={**body, "drop_params": True})).status_code == 200
    assert "logprobs" not in ollama_upstream.requests[-1].body


async def test_upstream_secret_never_leaks(http: httpx.AsyncClient, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.fail(401, "bad upstream key", times=1)
    resp = await http.post(CHAT, json={"model": "gpt-fake", "messages": HI})
    assert resp.status_code == 401
    assert "sk-upstream-secret" not in resp.text
    assert openai_upstream.requests[-1].headers["Authorization"] == "Bearer sk-upstream-secret"
    health = await http.get("/health")
    assert "sk-upstream-secret" not in health.text
