"""State shared by the replicas of the proxy: in Redis when configured, else in this process."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from proxyllm.core.memory_state import MemoryState
from proxyllm.core.shared_state import MarkEvent, SharedState, Subscriber

__all__ = ["MarkEvent", "MemoryState", "SharedState", "Subscriber", "redis_url", "shared_state"]


def redis_url(
    *,
    url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    password: str | None = None,
    env: Mapping[str, str] = {},
) -> str | None:
    """The Redis to use: an explicit URL, else host/port/password, else ``REDIS_URL`` / ``REDIS_HOST``."""
    if url:
        return url
    host = host or env.get("REDIS_HOST")
    if not host:
        return env.get("REDIS_URL") or None
    port = port or int(env.get("REDIS_PORT") or 6379)
    password = password or env.get("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"


def shared_state(url: str | None, *, namespace: str = "proxyllm") -> SharedState:
    if not url:
        return MemoryState()
    from proxyllm.state.redis import RedisState

    return RedisState(url, namespace=namespace)
