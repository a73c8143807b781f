"""Images, moderations, speech, transcriptions and rerank end to end: the real openai SDK (and httpx in
Cohere's shape for rerank) -> the proxy -> a fake upstream; each priced per unit on its spend-log row
(PostgreSQL); the request bounds; Azure's path form with the AzureOpenAI client."""

from __future__ import annotations

import asyncio
import io
import struct
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.conftest import MASTER_KEY, ProxyServer, fresh_postgres_database, postgres_template, run_in_proxy
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[FakeOpenAI]:
    """The module's own fake (its requests are reset after every test)."""
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(autouse=True)
def _reset_upstream(upstream: FakeOpenAI) -> Iterator[None]:
    yield
    upstream.reset()


@pytest.fixture(scope="module")
async def pg_url() -> AsyncIterator[str]:
    async with fresh_postgres_database(await postgres_template()) as url:
        yield url


def media_config(fake: FakeOpenAI) -> str:
    def entry(name: str, model: str, **params: Any) -> dict[str, Any]:
        base = {"model": model, "api_base": fake.api_base, "api_key": "sk-upstream-secret"}
        return {"model_name": name, "litellm_params": {**base, **params}}

    return yaml.safe_dump(
        {
            "model_list": [
                entry("dall-e", "openai/dall-e-3", output_cost_per_image=0.04),
                entry("mod", "openai/omni-moderation-latest"),
                entry("tts", "openai/tts-1", input_cost_per_character=0.000015),
                entry("whisper", "openai/whisper-1", input_cost_per_second=0.0001),
                entry("rerank", "cohere/rerank-v3.5", api_base=fake.url, input_cost_per_query=0.002),
                entry("vllm-rerank", "hosted_vllm/bge-reranker", input_cost_per_token=0.00000001),
                {"model_name": "llama", "litellm_params": {"model": "ollama_chat/llama3", "api_base": fake.url}},
                entry("gpt-fake", "openai/gpt-fake", input_cost_per_token=0.000001, output_cost_per_token=0.000002),
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )


@pytest.fixture(scope="module")
async def proxy(upstream: FakeOpenAI, pg_url: str, module_proxy_factory: Any) -> ProxyServer:
    """One proxy (and PostgreSQL database) for the module: each case reads only the spend rows of its own
    requests and the budget of its own key. Set up in this order, the proxy stops first, then its
    database is dropped, then the fake stops."""
    config = media_config(upstream)
    server: ProxyServer = await asyncio.to_thread(module_proxy_factory, config, env={"DATABASE_URL": pg_url})
    return server


def sdk(proxy: ProxyServer, key: str = MASTER_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0)


def http(proxy: ProxyServer, key: str = MASTER_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}, timeout=30)


async def spend_row(proxy: ProxyServer, request_id: str) -> dict[str, Any]:
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    async with http(proxy) as c:
        rows = (await c.get("/spend/logs", params={"request_id": request_id})).json()
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


def wav(seconds: float, rate: int = 8000) -> bytes:
    data = b"\x00\x00" * int(seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


async def test_images_are_generated_and_priced_per_image(proxy: ProxyServer, upstream: FakeOpenAI) -> None:
    raw = await sdk(proxy).images.with_raw_response.generate(model="dall-e", prompt="a red fox", n=3, size="1024x1024")
    images = raw.parse()
    assert len(images.data or []) == 3
    sent = upstream.requests[-1]
    assert sent.path == "/v1/images/generations" and sent.body["model"] == "dall-e-3" and sent.body["n"] == 3
    assert raw.headers["x-litellm-response-cost"] == "0.12"
    row = await spend_row(proxy, raw.headers["x-litellm-call-id"])
    assert row["call_type"] == "image_generation" and Decimal(str(row["spend"])) == Decimal("0.12")
    assert row["model_group"] == "dall-e"


async def test_moderations_without_a_model_go_to_the_configured_moderation_model(
    proxy: ProxyServer, upstream: FakeOpenAI
) -> None:
    """LiteLLM's proxy needs no ``model`` on /moderations: the first moderation model group answers."""
    raw = await sdk(proxy).moderations.with_raw_response.create(input="fine text")
    assert raw.parse().results[0].flagged is False
    assert raw.headers["x-litellm-model-group"] == "mod"
    assert upstream.requests[-1].body["model"] == "omni-moderation-latest"
    # A key without access to that model group is refused as if it had named it.
    async with http(proxy) as c:
        key = (await c.post("/key/generate", json={"models": ["gpt-fake"]})).json()["key"]
    with pytest.raises(openai.APIStatusError) as refused:
        await sdk(proxy, key).moderations.create(input="fine text")
    assert refused.value.status_code in (401, 403) and "mod" in refused.value.message


async def test_moderations_without_a_model_and_none_configured_is_400(shared_admin: httpx.AsyncClient) -> None:
    resp = await shared_admin.post("/v1/moderations", json={"input": "fine text"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "model", resp.text


async def test_moderations_speech_and_transcriptions(proxy: ProxyServer, upstream: FakeOpenAI) -> None:
    client = sdk(proxy)
    moderation = await client.moderations.create(model="mod", input=["fine text", "more text"])
    assert len(moderation.results) == 2 and moderation.results[0].flagged is False

    text = "Hello there, this is spoken."
    speech = await client.audio.speech.with_raw_response.create(model="tts", voice="alloy", input=text)
    assert speech.headers["content-type"] == "audio/mpeg"
    assert speech.content == b"ID3fake-audio:" + text.encode()
    row = await spend_row(proxy, speech.headers["x-litellm-call-id"])
    assert Decimal(str(row["spend"])) == Decimal("0.000015") * len(text)

    audio = ("hello.wav", io.BytesIO(wav(3.0)), "audio/wav")
    upstream.transcript_seconds = 2.5
    raw = await client.audio.transcriptions.with_raw_response.create(model="whisper", file=audio, language="en")
    assert raw.parse().text == "hello from the audio"
    sent = upstream.requests[-1]
    assert (
        sent.body["model"] == "whisper-1" and sent.body["language"] == "en" and sent.body["file_bytes"] == len(wav(3.0))
    )
    row = await spend_row(proxy, raw.headers["x-litellm-call-id"])
    assert Decimal(str(row["spend"])) == Decimal("0.00025")  # 2.5 s reported by the upstream

    upstream.transcript_seconds = None  # not reported: the WAV header says 3 s
    raw = await client.audio.transcriptions.with_raw_response.create(
        model="whisper", file=("a.wav", io.BytesIO(wav(3.0)), "audio/wav")
    )
    row = await spend_row(proxy, raw.headers["x-litellm-call-id"])
    assert Decimal(str(row["spend"])) == Decimal("0.0003")

    as_text = await client.audio.transcriptions.with_raw_response.create(
        model="whisper", file=("a.wav", io.BytesIO(wav(1.0)), "audio/wav"), response_format="text"
    )
    assert as_text.headers["content-type"].startswith("text/plain") and "hello" in as_text.text


async def test_rerank_in_cohere_shape_on_every_path(proxy: ProxyServer, upstream: FakeOpenAI) -> None:
    docs = ["short", "a much longer document about foxes", "medium text"]
    async with http(proxy) as c:
        for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
            resp = await c.post(path, json={"model": "rerank", "query": "foxes", "documents": docs, "top_n": 2})
            assert resp.status_code == 200, resp.text
            assert [r["index"] for r in resp.json()["results"]] == [1, 2]
        assert upstream.requests[-1].path == "/v2/rerank" and upstream.requests[-1].body["model"] == "rerank-v3.5"
        row = await spend_row(proxy, resp.headers["x-litellm-call-id"])
        assert row["call_type"] == "rerank" and Decimal(str(row["spend"])) == Decimal("0.002")  # one search unit
        resp = await c.post("/v1/rerank", json={"model": "vllm-rerank", "query": "q", "documents": docs})
        assert resp.status_code == 200 and upstream.requests[-1].path == "/v1/rerank"
        # a cohere/ deployment serves rerank only
        resp = await c.post(
            "/v1/chat/completions", json={"model": "rerank", "messages": [{"role": "user", "content": "x"}]}
        )
        assert resp.status_code in (400, 501), resp.text


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/images/generations", {"model": "dall-e", "prompt": "x", "n": 11}, "n"),
        ("/v1/images/generations", {"model": "dall-e", "prompt": "x", "n": -1}, "n"),
        ("/v1/images/generations", {"model": "dall-e", "prompt": "x", "size": "huge"}, "size"),
        ("/v1/images/generations", {"model": "dall-e", "prompt": "x" * 40_000}, "prompt"),
        ("/v1/images/generations", {"model": "dall-e", "prompt": "a\u0000b"}, "prompt"),
        ("/v1/images/generations", {"model": "dall-e"}, "prompt"),
        ("/v1/audio/speech", {"model": "tts", "voice": "alloy", "input": "x" * 5000}, "input"),
        ("/v1/audio/speech", {"model": "tts", "voice": "alloy", "input": "hi", "speed": 100}, "speed"),
        ("/v1/audio/speech", {"model": "tts", "voice": "alloy", "input": "hi", "speed": "fast"}, "speed"),
        ("/v1/moderations", {"model": "mod", "input": []}, "input"),
        ("/v1/moderations", {"model": "mod", "input": [1, 2]}, "input"),
        ("/v1/rerank", {"model": "rerank", "query": "q", "documents": ["a"], "top_n": 5}, "top_n"),
        ("/v1/rerank", {"model": "rerank", "query": "q", "documents": ["a"] * 1001}, "documents"),
        ("/v1/rerank", {"model": "rerank", "query": "q", "documents": [{"no": "text"}]}, "documents"),
        ("/v1/rerank", {"model": "rerank", "query": 5, "documents": ["a"]}, "query"),
        ("/v1/images/generations", {"model": "llama", "prompt": "x"}, "model"),  # Ollama draws no images
    ],
)
async def test_hostile_fields_are_a_clear_400(proxy: ProxyServer, path: str, body: dict[str, Any], param: str) -> None:
    async with http(proxy) as c:
        resp = await c.post(path, json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param


async def test_non_finite_numbers_are_a_400(proxy: ProxyServer) -> None:
    async with http(proxy) as c:
        for raw in (
            b'{"model":"tts","voice":"a","input":"hi","speed":1e309}',
            b'{"model":"tts","voice":"a","input":"hi","speed":NaN}',
        ):
            resp = await c.post("/v1/audio/speech", content=raw, headers={"content-type": "application/json"})
            assert resp.status_code == 400, resp.text


async def test_transcription_uploads_are_checked(proxy: ProxyServer) -> None:
    async with http(proxy) as c:
        no_file = await c.post("/v1/audio/transcriptions", data={"model": "whisper"}, files={"x": ("", b"")})
        assert no_file.status_code == 400
        as_json = await c.post("/v1/audio/transcriptions", json={"model": "whisper"})
        assert as_json.status_code == 400
        big = await c.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper"},
            files={"file": ("a.wav", b"\x00" * (26 * 1024 * 1024), "audio/wav")},
        )
        assert big.status_code in (400, 413)
        bad_temperature = await c.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper", "temperature": "nan"},
            files={"file": ("a.wav", wav(0.5), "audio/wav")},
        )
        assert bad_temperature.status_code == 400 and bad_temperature.json()["error"]["param"] == "temperature"


async def test_a_budget_covers_media_calls_too(proxy: ProxyServer, upstream: FakeOpenAI) -> None:
    async with http(proxy) as admin:
        key = (await admin.post("/key/generate", json={"max_budget": 0.1})).json()["key"]
    client = sdk(proxy, key)
    await client.images.generate(model="dall-e", prompt="one", n=2)  # 0.08
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())
    await client.images.generate(model="dall-e", prompt="two", n=1)  # 0.12: over, admitted as budget was left
    with pytest.raises(openai.APIStatusError) as info:
        await client.images.generate(model="dall-e", prompt="three", n=1)
    assert info.value.status_code == 400 and "Budget has been exceeded" in info.value.message
