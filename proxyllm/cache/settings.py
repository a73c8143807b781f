"""The response cache's settings, from LiteLLM's ``litellm_settings.cache`` and ``cache_params``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from proxyllm.config.schema import CacheParams
from proxyllm.core.types import Operation
from proxyllm.state import redis_url

log = logging.getLogger("proxyllm.cache")

DEFAULT_TTL = 600.0
# LiteLLM's call-type names -> the operations they cache here.
CALL_TYPES = {
    "completion": Operation.CHAT,
    "acompletion": Operation.CHAT,
    "text_completion": Operation.COMPLETION,
    "atext_completion": Operation.COMPLETION,
    "embedding": Operation.EMBEDDING,
    "aembedding": Operation.EMBEDDING,
    "responses": Operation.RESPONSES,
    "aresponses": Operation.RESPONSES,
}


@dataclass(frozen=True, slots=True)
class CacheSettings:
    kind: str  # local | redis
    ttl: float
    namespace: str | None
    operations: frozenset[Operation]
    default_on: bool
    max_entries: int
    redis_url: str | None = None


def cache_settings(params: CacheParams, *, shared_redis_url: str | None) -> CacheSettings:
    """Resolve the cache's settings; Redis is the cache's own (host/url) or else the shared state's."""
    own = redis_url(url=params.url, host=params.host, port=params.port, password=params.password)
    kind = params.type or ("redis" if own or shared_redis_url else "local")
    url = (own or shared_redis_url) if kind == "redis" else None
    if kind == "redis" and not url:
        raise ValueError("cache_params.type is redis but no Redis is configured (cache_params.host or REDIS_URL)")
    operations = set(CALL_TYPES.values())
    if params.supported_call_types is not None:
        operations = set()
        for name in params.supported_call_types:
            operation = CALL_TYPES.get(name)
            if operation is None:
                log.warning("cache_params.supported_call_types: %r is not cached by proxyllm; ignored", name)
            else:
                operations.add(operation)
    return CacheSettings(
        kind=kind,
        ttl=params.ttl or DEFAULT_TTL,
        namespace=params.namespace,
        operations=frozenset(operations),
        default_on=params.mode == "default_on",
        max_entries=params.max_size_in_memory,
        redis_url=url,
    )
