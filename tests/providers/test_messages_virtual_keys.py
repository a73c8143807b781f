"""``/v1/messages`` and count_tokens honour a virtual key's model restrictions (SQLite accounts)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import MASTER_KEY, ProxyServer, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI

HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def proxy(
    tmp_path: Path, proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama
) -> ProxyServer:
    config = standard_config(openai_upstream.api_base, ollama_upstream.url)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/proxyllm.db"}
    server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env=env)
    return server


async def test_restricted_key(proxy: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {MASTER_KEY}"}) as admin:
        resp = await admin.post("/key/generate", json={"models": ["gpt-fake"]})
        assert resp.status_code == 200, resp.text
        key = resp.json()["key"]
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key=key, max_retries=0)
    msg = await client.messages.create(model="gpt-fake", max_tokens=10, messages=HI)
    assert msg.content[0].text == "Hello from the fake upstream"  # type: ignore[union-attr]
    with pytest.raises(anthropic.AuthenticationError):  # 401 key_model_access_denied, as LiteLLM answers
        await client.messages.create(model="llama3", max_tokens=10, messages=HI)
    with pytest.raises(anthropic.AuthenticationError) as info:  # count_tokens goes through the same hooks
        await client.messages.count_tokens(model="llama3", messages=HI)
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert (await client.messages.count_tokens(model="gpt-fake", messages=HI)).input_tokens > 0
