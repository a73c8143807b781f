"""Ollama's API (``/api/*``) on the proxy, driven by the real ``ollama`` Python client, in front of
Ollama, OpenAI and Anthropic upstreams (fakes on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import ollama
import orjson
import pytest

from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.anthropic_upstream import API_KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
MODELS = ("llama3", "gpt-fake", "claude")  # an Ollama, an OpenAI and an Anthropic model


@pytest.fixture(scope="module")
async def anthropic_upstream() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    await fake.start()
    yield fake
    await fake.stop()


def ollama_config(openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, anthropic_upstream: FakeAnthropic) -> str:
    extra = f"""
  - model_name: claude
    litellm_params:
      model: anthropic/claude-fake-4
      api_base: {anthropic_upstream.url}
      api_key: {ANTHROPIC_KEY}
  - model_name: llama-renamed
    litellm_params:
      model: ollama_chat/qwen3:8b
      api_base: {ollama_upstream.url}
"""
    return standard_config(openai_upstream.api_base, ollama_upstream.url).replace(
        "general_settings:", extra.strip("\n") + "\ngeneral_settings:", 1
    )


@pytest.fixture(autouse=True)
def _reset_anthropic(anthropic_upstream: FakeAnthropic) -> Iterator[None]:
    yield
    anthropic_upstream.reset()


@pytest.fixture(scope="module")
async def shared(
    module_proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    anthropic_upstream: FakeAnthropic,
) -> ProxyServer:
    """The proxy the tests here share: they read, or make keys of their own. Tests that make an upstream
    fail use ``proxy`` (their own): failures count towards a deployment's cooldown."""
    config = ollama_config(openai_upstream, ollama_upstream, anthropic_upstream)
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, config)
    return server


@pytest.fixture
async def proxy(
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
    anthropic_upstream: FakeAnthropic,
) -> ProxyServer:
    config = ollama_config(openai_upstream, ollama_upstream, anthropic_upstream)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config)
    return server


def client(proxy: ProxyServer, key: str = MASTER_KEY, **headers: str) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=proxy.url, headers={"authorization": f"Bearer {key}", **headers})


async def new_key(proxy: ProxyServer, **fields: Any) -> str:
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        resp = await admin.post("/key/generate", json=fields)
        assert resp.status_code == 200, resp.text
        key: str = resp.json()["key"]
        return key


async def test_list_and_show(shared: ProxyServer) -> None:
    c = client(shared)
    names = {m.model for m in (await c.list()).models}
    assert {"llama3", "gpt-fake", "claude", "nomic", "llama-renamed"} <= names
    shown = await c.show("llama3")  # an Ollama model: the upstream's own details
    assert shown.details is not None and shown.details.family == "llama"
    assert shown.capabilities == ["completion", "tools"]
    assert shown.modelfile is None  # the upstream's file paths are not passed on
    hosted = await c.show("claude")
    assert hosted.details is not None and hosted.details.family == "anthropic"
    assert "completion" in (hosted.capabilities or [])
    async with httpx.AsyncClient(base_url=shared.url) as anonymous:  # no key needed, as on Ollama
        version = await anonymous.get("/api/version")
    assert version.status_code == 200 and version.json()["version"]


async def test_list_is_the_keys_own(shared: ProxyServer) -> None:
    key = await new_key(shared, models=["gpt-fake"])
    c = client(shared, key)
    assert [m.model for m in (await c.list()).models] == ["gpt-fake"]
    with pytest.raises(ollama.ResponseError) as info:
        await c.show("llama3")
    assert info.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as info:
        await c.chat(model="llama3", messages=HI, stream=False)
    assert info.value.status_code == 401  # key_model_access_denied, LiteLLM's status


@pytest.mark.parametrize("model", MODELS)
async def test_chat(shared: ProxyServer, model: str) -> None:
    reply = await client(shared).chat(model=model, messages=HI, stream=False, options={"temperature": 0.1})
    assert reply.message.role == "assistant"
    assert reply.message.content and "Hello" in reply.message.content
    assert reply.model == model
    assert reply.done and reply.done_reason == "stop"
    assert reply.prompt_eval_count and reply.eval_count
    assert reply.total_duration and reply.eval_duration and reply.eval_duration > 0


@pytest.mark.parametrize("model", MODELS)
async def test_chat_stream(shared: ProxyServer, model: str) -> None:
    parts = [part async for part in await client(shared).chat(model=model, messages=HI, stream=True)]
    assert "".join(p.message.content or "" for p in parts).startswith("Hello")
    assert all(not p.done for p in parts[:-1]) and len(parts) > 2
    last = parts[-1]
    assert last.done and last.done_reason == "stop" and last.eval_count and last.prompt_eval_count
    assert {p.model for p in parts} == {model}


async def test_ndjson_content_type_and_headers(shared: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=shared.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as h:
        resp = await h.post("/api/chat", json={"model": "gpt-fake", "messages": HI})
        assert resp.headers["content-type"] == "application/x-ndjson"
        assert resp.headers["x-litellm-model-group"] == "gpt-fake"
        lines = [orjson.loads(line) for line in resp.text.splitlines()]
        assert lines[-1]["done"] is True
        plain = await h.post("/api/chat", json={"model": "gpt-fake", "messages": HI, "stream": False})
        assert plain.headers["content-type"] == "application/json"


@pytest.mark.parametrize("model", MODELS)
async def test_tools(shared: ProxyServer, model: str) -> None:
    c = client(shared)
    reply = await c.chat(model=model, messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER], stream=False)
    calls = reply.message.tool_calls
    assert calls and calls[0].function.name == "get_weather" and calls[0].function.arguments == {"city": "Paris"}
    streamed = [
        p
        async for p in await c.chat(
            model=model, messages=[{"role": "user", "content": "w?"}], tools=[WEATHER], stream=True
        )
    ]
    calls = [call for p in streamed for call in p.message.tool_calls or []]
    assert [(call.function.name, dict(call.function.arguments)) for call in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    # the result goes back as a tool message: the conversation continues with text
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    follow = await c.chat(model=model, messages=history, tools=[WEATHER], stream=False)
    assert follow.message.content and not follow.message.tool_calls


@pytest.mark.parametrize("model", ("llama3", "gpt-fake"))
async def test_embed(shared: ProxyServer, model: str) -> None:
    c = client(shared)
    name = "nomic" if model == "llama3" else "embed-fake"
    result = await c.embed(model=name, input=["one", "two"])
    assert len(result.embeddings) == 2 and all(len(v) > 0 for v in result.embeddings)
    assert result.prompt_eval_count
    old = await c.embeddings(model=name, prompt="one")
    assert len(old.embedding) > 0


async def test_generate(shared: ProxyServer, ollama_upstream: FakeOllama) -> None:
    c = client(shared)
    for model in ("gpt-fake", "llama3"):
        reply = await c.generate(model=model, prompt="hi", system="be brief", stream=False)
        assert reply.response.startswith("Hello") and reply.done and reply.eval_count
        parts = [p async for p in await c.generate(model=model, prompt="hi", stream=True)]
        assert "".join(p.response for p in parts).startswith("Hello") and parts[-1].done
    assert ollama_upstream.requests[-1].path == "/api/generate"  # an Ollama model: the client's own request


async def test_ollama_upstream_is_bytes_through(shared: ProxyServer, ollama_upstream: FakeOllama) -> None:
    """Ollama-only fields reach an Ollama upstream untouched; only the model name is the upstream's."""
    c = client(shared)
    reply = await c.chat(
        model="llama-renamed",
        messages=HI,
        stream=False,
        keep_alive="10m",
        think=True,
        options={"num_ctx": 4096, "top_k": 5, "mirostat": 1},
    )
    sent = ollama_upstream.requests[-1]
    assert sent.path == "/api/chat"
    assert sent.body["model"] == "qwen3:8b" and sent.body["keep_alive"] == "10m" and sent.body["think"] is True
    assert sent.body["options"] == {"num_ctx": 4096, "top_k": 5, "mirostat": 1}
    assert reply.model == "llama-renamed"  # the client's name comes back, not the upstream's
    parts = [p async for p in await c.chat(model="llama-renamed", messages=HI, format="json", stream=True)]
    assert {p.model for p in parts} == {"llama-renamed"}
    assert ollama_upstream.requests[-1].body["format"] == "json"
    assert orjson.loads("".join(p.message.content or "" for p in parts)) == {"reply": "Hello from the fake upstream"}


async def test_format_schema_on_any_model(shared: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    await client(shared).chat(model="gpt-fake", messages=HI, format=schema, stream=False)
    sent = openai_upstream.requests[-1].body
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


async def test_errors(proxy: ProxyServer, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        await client(proxy, "sk-wrong").chat(model="gpt-fake", messages=HI, stream=False)
    assert info.value.status_code == 401 and "invalid API key" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:
        await client(proxy, "sk-wrong").list()
    assert info.value.status_code == 401
    with pytest.raises(ollama.ResponseError) as info:  # a model the proxy does not serve
        await client(proxy).chat(model="no-such-model", messages=HI, stream=False)
    assert info.value.status_code == 404 and "no-such-model" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:  # streamed: the error comes before the first line
        async for _ in await client(proxy).chat(model="no-such-model", messages=HI, stream=True):
            pass
    assert info.value.status_code == 404
    ollama_upstream.fail(404, 'model "llama3" not found, try pulling it first')  # the upstream lost the model
    with pytest.raises(ollama.ResponseError) as info:
        await client(proxy).chat(model="llama3", messages=HI, stream=False)
    assert info.value.status_code == 404 and "try pulling it first" in info.value.error
    openai_upstream.fail(429, "slow down", times=3, retry_after="0")  # the upstream's 429 (retried at once)
    with pytest.raises(ollama.ResponseError) as info:
        await client(proxy).chat(model="gpt-fake", messages=HI, stream=False, options={"seed": 1})
    assert info.value.status_code == 429
    openai_upstream.reset()
    limited = client(proxy, await new_key(proxy, rpm_limit=1))  # the key's own rate limit
    await limited.chat(model="llama3", messages=HI, stream=False)
    with pytest.raises(ollama.ResponseError) as info:
        await limited.chat(model="llama3", messages=HI, stream=False)
    assert info.value.status_code == 429 and "limit" in info.value.error
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as h:
        for body in (
            b"not json",
            {"model": "gpt-fake", "messages": "hi"},
            {"model": "gpt-fake", "messages": HI, "options": {"temperature": "hot"}},
            {"model": "gpt-fake", "messages": HI, "options": {"num_predict": -5}},
            {"model": "gpt-fake", "messages": HI, "format": 3},
            {"model": "gpt-fake", "messages": HI, "think": "maybe"},
            {"model": "gpt-fake", "messages": [{"role": "robot", "content": "x"}]},
            {"model": "gpt-fake", "messages": [{"role": "user", "content": "x", "images": [3]}]},
            {"model": "a\x00b", "messages": HI},
            {"model": "m" * 300, "messages": HI},
            {"model": "gpt-fake", "messages": HI, "stream": "yes"},
        ):
            resp = await h.post("/api/chat", content=body if isinstance(body, bytes) else orjson.dumps(body))
            assert resp.status_code == 400, (body, resp.text)
            assert set(resp.json()) == {"error"} and isinstance(resp.json()["error"], str)
        resp = await h.post("/api/embed", json={"model": "embed-fake", "input": [1, 2]})
        assert resp.status_code == 400 and "input" in resp.json()["error"]
        resp = await h.post("/api/chat", content=b'{"model": "gpt-fake", "messages": [], "options": {"top_k": 1e999}}')
        assert resp.status_code == 400


async def test_mid_stream_error_is_an_error_line(proxy: ProxyServer, openai_upstream: FakeOpenAI) -> None:
    from tests.fakes.base import Action

    openai_upstream.push(Action(error_after=2))
    with pytest.raises(ollama.ResponseError):
        async for _ in await client(proxy).chat(model="gpt-fake", messages=HI, stream=True):
            pass


async def test_empty_messages_load_the_model(shared: ProxyServer, ollama_upstream: FakeOllama) -> None:
    reply = await client(shared).chat(model="gpt-fake", messages=[], stream=False)
    assert reply.done and reply.done_reason == "load"


async def test_model_management(shared: ProxyServer, ollama_upstream: FakeOllama) -> None:
    key = await new_key(shared)
    with pytest.raises(ollama.ResponseError) as info:
        await client(shared, key).pull("llama3.2")
    assert info.value.status_code == 403 and "master key" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:
        await client(shared, key).delete("llama3")
    assert info.value.status_code == 403
    with pytest.raises(ollama.ResponseError) as info:  # the master key must name the deployment
        await client(shared).pull("llama3.2")
    assert info.value.status_code == 400 and "x-proxyllm-deployment" in info.value.error
    llama = next(d for d in shared.runtime.router.deployments if d.model_name == "llama3")
    admin = client(shared, **{"x-proxyllm-deployment": llama.id})
    progress = [p.status async for p in await admin.pull("llama3.2", stream=True)]
    assert progress[-1] == "success"
    assert ollama_upstream.requests[-1].path == "/api/pull" and ollama_upstream.requests[-1].body["insecure"] is False
    assert (await admin.pull("llama3.2")).status == "success"
    assert (await admin.copy("llama3", "llama3-copy")).status == "success"
    assert (await admin.delete("llama3-copy")).status == "success"
    assert ollama_upstream.requests[-1].path == "/api/delete"
    for call in (admin.push("llama3"), admin.create("mine", from_="llama3")):
        with pytest.raises(ollama.ResponseError) as info:
            await call
        assert info.value.status_code == 403


async def test_ps(shared: ProxyServer) -> None:
    running = await client(shared).ps()
    # the fake has llama3 loaded: both model groups that send to it are listed, under the proxy's names
    assert [m.model for m in running.models] == ["llama3", "llama3-generate"]
    key = await new_key(shared, models=["llama3", "gpt-fake"])
    assert [m.model for m in (await client(shared, key).ps()).models] == ["llama3"]


@pytest.mark.parametrize("stream", [False, True])
async def test_cache_keeps_ollama_answers_apart(
    proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama, stream: bool
) -> None:
    """A cached bytes-through Ollama answer is replayed to Ollama clients only, never to OpenAI ones."""
    extra = "litellm_settings:\n  cache: true\n  cache_params: {type: local}\n"
    config = standard_config(openai_upstream.api_base, ollama_upstream.url, extra)
    proxy: ProxyServer = await asyncio.to_thread(proxy_factory, config)
    c = client(proxy)

    async def ask() -> str:
        if stream:
            return "".join(
                [p.message.content or "" async for p in await c.chat(model="llama3", messages=HI, stream=True)]
            )
        return (await c.chat(model="llama3", messages=HI, stream=False)).message.content or ""

    first = await ask()
    calls = len(ollama_upstream.requests)
    assert await ask() == first == "Hello from the fake upstream"
    assert len(ollama_upstream.requests) == calls  # the second answer came from the cache
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as h:
        openai_shaped = await h.post("/v1/chat/completions", json={"model": "llama3", "messages": HI, "stream": stream})
    assert openai_shaped.status_code == 200
    assert len(ollama_upstream.requests) == calls + 1  # not the Ollama client's cached answer
    assert ("data: " in openai_shaped.text) if stream else openai_shaped.json()["object"] == "chat.completion"
