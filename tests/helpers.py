"""Helpers every test folder uses, in one place (fixtures stay in the conftest.py files)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    import openai

T = TypeVar("T")

MASTER_KEY = "sk-master-test-key"  # every test proxy's general_settings.master_key


def key_client(proxy: Any, key: str = MASTER_KEY, *, timeout: float = 30, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client of a proxy (anything with a ``url``) that sends ``key`` as its bearer token (the
    master key unless told); ``async with`` it, or close it."""
    return httpx.AsyncClient(
        base_url=proxy.url, timeout=timeout, headers={"authorization": f"Bearer {key}"}, **kwargs
    )


async def eventually(
    check: Callable[[], T] | Callable[[], Awaitable[T]], timeout: float = 15.0, interval: float = 0.05
) -> T:
    """Poll ``check`` (plain or async) until it returns something truthy, and return that; fail after
    ``timeout`` seconds. For things that happen in the background (a flush, a sync, a delivery)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def sdk(proxy: Any, key: str, **kwargs: Any) -> openai.AsyncOpenAI:
    """The real OpenAI SDK pointed at a proxy (anything with a ``url``), without the SDK's own retries:
    the tests see every answer."""
    import openai  # here, not at the top: tests/conftest.py imports this module and most tests need no SDK

    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key=key, max_retries=0, **kwargs)


async def new_key(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """``/key/generate`` with these fields; the answer (``key``, ``token``, ...)."""
    resp = await admin.post("/key/generate", json=fields)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data
