"""Cache entries, settings and the local store, without a server."""

from __future__ import annotations

import asyncio

import pytest

from proxyllm.cache.entry import BODY, STREAM, decode, encode, replay
from proxyllm.cache.settings import cache_settings
from proxyllm.cache.store import LocalStore
from proxyllm.config.schema import CacheParams
from proxyllm.core.types import Operation, Usage


def test_entries_round_trip_and_foreign_values_are_misses() -> None:
    entry = decode(encode(BODY, b'{"id": 1}', Usage(3, 4)))
    assert entry is not None and entry.kind == BODY and entry.data == b'{"id": 1}'
    assert entry.usage == Usage(3, 4) and 0 <= entry.age() < 5
    for junk in (b"", b"hello", b"x 1 2 3\n{}", b"b one 2 3\n{}", b"b 1 2\n{}"):
        assert decode(junk) is None


async def test_streams_replay_event_by_event() -> None:
    events = [b'data: {"a": 1}\n\n', b'data: {"b": 2}\n\n', b"data: [DONE]\n\n"]
    entry = decode(encode(STREAM, b"".join(events), None))
    assert entry is not None and entry.usage is None
    assert [e async for e in replay(entry.data)] == events


def test_settings_follow_litellm() -> None:
    local = cache_settings(CacheParams(), shared_redis_url=None)
    assert local.kind == "local" and local.ttl == 600 and local.default_on
    assert local.operations == {Operation.CHAT, Operation.COMPLETION, Operation.EMBEDDING, Operation.RESPONSES}
    shared = cache_settings(CacheParams(), shared_redis_url="redis://r:6379/0")
    assert shared.kind == "redis" and shared.redis_url == "redis://r:6379/0"
    own = cache_settings(CacheParams(host="cache", port=6380, password="p w"), shared_redis_url="redis://r:6379/0")
    assert own.redis_url == "redis://:p%20w@cache:6380/0"
    types = cache_settings(
        CacheParams(type="local", supported_call_types=["aembedding", "atranscription"], mode="default_off"),
        shared_redis_url=None,
    )
    assert types.operations == {Operation.EMBEDDING} and not types.default_on
    with pytest.raises(ValueError, match="no Redis is configured"):
        cache_settings(CacheParams(type="redis"), shared_redis_url=None)


async def test_local_store_expires_and_evicts_the_least_recently_used() -> None:
    store = LocalStore(max_entries=2)
    await store.set("a", b"1", 60)
    await store.set("b", b"2", 60)
    assert await store.get("a") == b"1"  # "a" is now the most recent
    await store.set("c", b"3", 60)
    assert await store.get("b") is None and await store.get("a") == b"1" and await store.get("c") == b"3"
    await store.set("short", b"x", 0.05)
    await asyncio.sleep(0.1)
    assert await store.get("short") is None and len(store) == 1  # "a" made room for it; it expired
