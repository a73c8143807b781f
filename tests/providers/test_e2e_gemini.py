"""``gemini/<model>`` end to end: the openai SDK -> the proxy -> a fake Gemini (AI Studio) server."""

from __future__ import annotations

import asyncio
import base64
import struct
from typing import Any

import openai
import pytest

from tests.conftest import MASTER_KEY, ProxyServer
from tests.fakes.gemini_upstream import API_KEY, BLOCK_WORD, FakeGemini
from tests.fakes.ollama_upstream import FakeOllama
from tests.providers.test_e2e_anthropic import TOOLS

HI: Any = [{"role": "user", "content": "hi"}]


def gemini_config(gemini_upstream: FakeGemini, ollama_upstream: FakeOllama) -> str:
    return f"""
model_list:
  - model_name: gemini
    litellm_params: {{model: gemini/gemini-fake-flash, api_base: {gemini_upstream.url}}}
  - model_name: gemini-guarded
    litellm_params: {{model: gemini/gemini-fake-flash, api_base: {gemini_upstream.url}}}
  - model_name: gemini-embed
    litellm_params: {{model: gemini/gemini-fake-embed, api_base: {gemini_upstream.url}}}
  - model_name: gemini-bad-key
    litellm_params: {{model: gemini/gemini-fake-flash, api_base: {gemini_upstream.url}, api_key: wrong}}
  - model_name: llama3
    litellm_params: {{model: ollama_chat/llama3, api_base: {ollama_upstream.url}}}
litellm_settings:
  content_policy_fallbacks: [{{"gemini-guarded": ["llama3"]}}]
router_settings: {{num_retries: 1}}
general_settings: {{master_key: {MASTER_KEY}}}
"""


@pytest.fixture(scope="module")
async def shared(module_proxy_factory: Any, gemini_upstream: FakeGemini, ollama_upstream: FakeOllama) -> ProxyServer:
    """The proxy the module shares; the quota case (a 429 counts towards a cooldown) uses ``proxy``."""
    text = gemini_config(gemini_upstream, ollama_upstream)
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, text, env={"GEMINI_API_KEY": API_KEY})
    return server


@pytest.fixture
async def proxy(proxy_factory: Any, gemini_upstream: FakeGemini, ollama_upstream: FakeOllama) -> ProxyServer:
    text = gemini_config(gemini_upstream, ollama_upstream)
    server: ProxyServer = await asyncio.to_thread(proxy_factory, text, env={"GEMINI_API_KEY": API_KEY})
    return server


@pytest.fixture
def client(shared: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=shared.url + "/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def own_client(proxy: ProxyServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


async def test_plain_chat(client: openai.AsyncOpenAI, gemini_upstream: FakeGemini) -> None:
    resp = await client.chat.completions.create(
        model="gemini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        max_tokens=64,
        temperature=0.5,
        stop=["END"],
    )
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (9, 5)
    sent = gemini_upstream.requests[-1]
    assert sent.path == "/v1beta/models/gemini-fake-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert sent.body["generationConfig"] == {"maxOutputTokens": 64, "temperature": 0.5, "stopSequences": ["END"]}


async def test_streamed_chat(client: openai.AsyncOpenAI, gemini_upstream: FakeGemini) -> None:
    stream = await client.chat.completions.create(
        model="gemini", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert (text, finish) == ("Hello from the fake upstream", "stop")
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (9, 5)
    assert gemini_upstream.queries[-1] == "alt=sse"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip_keeps_thought_signature(
    client: openai.AsyncOpenAI, gemini_upstream: FakeGemini, stream: bool
) -> None:
    ask: Any = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        chunks = await client.chat.completions.create(model="gemini", messages=ask, tools=TOOLS, stream=True)
        calls = [c async for chunk in chunks for choice in chunk.choices for c in choice.delta.tool_calls or []]
        call_id, name, args = calls[0].id, calls[0].function.name, calls[0].function.arguments  # type: ignore[union-attr]
    else:
        resp = await client.chat.completions.create(model="gemini", messages=ask, tools=TOOLS)
        assert resp.choices[0].finish_reason == "tool_calls"
        call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
        call_id, name, args = call.id, call.function.name, call.function.arguments
    assert (name, args) == ("get_weather", '{"city":"Paris"}')
    decl = gemini_upstream.requests[-1].body["tools"][0]["functionDeclarations"][0]
    assert decl["parametersJsonSchema"] == TOOLS[0]["function"]["parameters"]
    follow = await client.chat.completions.create(
        model="gemini",
        tools=TOOLS,
        messages=[
            *ask,
            {
                "role": "assistant",
                "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
        ],
    )
    assert follow.choices[0].message.content == "Hello from the fake upstream"
    sent = gemini_upstream.requests[-1].body["contents"]
    assert sent[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLWdlbQ=="}
        ],
    }
    assert sent[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "sunny"}}}],
    }


async def test_reasoning(client: openai.AsyncOpenAI, gemini_upstream: FakeGemini) -> None:
    resp = await client.chat.completions.create(model="gemini", messages=HI, reasoning_effort="low")
    assert (resp.choices[0].message.model_extra or {})["reasoning_content"] == "Thinking it over."
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    config = gemini_upstream.requests[-1].body["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}


@pytest.mark.parametrize("stream", [False, True])
async def test_safety_block_is_content_policy(client: openai.AsyncOpenAI, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="gemini", messages=[{"role": "user", "content": BLOCK_WORD}], stream=stream
        )
    assert info.value.code == "content_policy_violation"
    assert "SAFETY" in info.value.message


async def test_safety_block_uses_content_policy_fallbacks(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gemini-guarded", messages=[{"role": "user", "content": BLOCK_WORD}]
    )
    assert raw.headers["x-litellm-model-group"] == "llama3"
    assert raw.parse().choices[0].message.content == "Hello from the fake upstream"


async def test_quota_error_is_retried(own_client: openai.AsyncOpenAI, gemini_upstream: FakeGemini) -> None:
    gemini_upstream.fail(429, "Resource has been exhausted")
    raw = await own_client.chat.completions.with_raw_response.create(model="gemini", messages=HI)
    assert raw.headers["x-litellm-attempted-retries"] == "1"
    assert len(gemini_upstream.requests) == 2


async def test_bad_key_is_401(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="gemini-bad-key", messages=HI)


async def test_embeddings(client: openai.AsyncOpenAI, gemini_upstream: FakeGemini) -> None:
    one = await client.embeddings.create(model="gemini-embed", input="a", encoding_format="float", dimensions=3)
    assert one.data[0].embedding == [0.25, -0.5, 1.0]
    sent = gemini_upstream.requests[-1]
    assert sent.path.endswith(":embedContent")
    assert sent.body == {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3}
    many = await client.embeddings.create(model="gemini-embed", input=["a", "bb"])  # the SDK asks for base64
    assert [d.embedding for d in many.data] == [[0.25, -0.5, 1.0]] * 2
    sent = gemini_upstream.requests[-1]
    assert sent.path.endswith(":batchEmbedContents")
    assert sent.body["requests"][1] == {"model": "models/gemini-fake-embed", "content": {"parts": [{"text": "bb"}]}}
    assert many.usage.prompt_tokens == 2


async def test_embeddings_base64_is_float32(shared: ProxyServer) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        r = await http.post(
            shared.url + "/v1/embeddings",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "gemini-embed", "input": "x", "encoding_format": "base64"},
        )
    assert struct.unpack("<3f", base64.b64decode(r.json()["data"][0]["embedding"])) == (0.25, -0.5, 1.0)
