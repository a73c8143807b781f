"""Which fields hold secrets, and how they are shown: never in clear, only a masked hint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxyllm.core.deployment import mask_secret

MASK = "****"
_SECRET_PARTS = ("secret", "password", "passwd", "credential", "api_key", "access_key", "private_key", "authorization")
_SECRET_NAMES = frozenset({"key", "token", "api_key", "master_key", "salt_key", "extra_headers", "headers"})


def is_secret_name(name: str) -> bool:
    """``api_key``, ``aws_secret_access_key``, ``azure_ad_token``, ``vertex_credentials``, ``extra_headers``...

    ``max_tokens`` and ``input_cost_per_token`` are not secrets.
    """
    n = name.lower().replace("-", "_")
    if n in _SECRET_NAMES or any(part in n for part in _SECRET_PARTS):
        return True
    return n.endswith("_token") and "per_token" not in n


def split_secrets(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(clear, secret) parts of litellm_params."""
    clear: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for name, value in params.items():
        (secret if is_secret_name(name) else clear)[name] = value
    return clear, secret


def mask_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return mask_secret(value)
    if isinstance(value, Mapping):
        return {k: MASK for k in value}
    return MASK


def masked(data: Any, *, keep: frozenset[str] = frozenset()) -> Any:
    """A copy of ``data`` with every secret-named field masked, at any depth.

    ``keep`` names top-level fields shown as they are (a key view's ``token`` is its SHA-256, not a secret).
    """
    if isinstance(data, Mapping):
        return {k: mask_value(v) if is_secret_name(str(k)) and k not in keep else masked(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [masked(v) for v in data]
    return data
