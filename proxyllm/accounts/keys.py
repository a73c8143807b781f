"""Virtual API keys: ``sk-`` + 192 bits of randomness, stored only as SHA-256 hex."""

from __future__ import annotations

import hashlib
import secrets

from proxyllm.core.errors import invalid_request

PREFIX = "sk-"


def generate_key() -> str:
    return PREFIX + secrets.token_urlsafe(24)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def mask_key(raw: str) -> str:
    return f"{raw[:3]}...{raw[-4:]}"


def check_custom_key(raw: str) -> str:
    if not raw.startswith(PREFIX) or len(raw) < 20:
        raise invalid_request("a custom 'key' must start with 'sk-' and be at least 20 characters long", param="key")
    return raw


def token_of(value: str) -> str:
    """Admin endpoints accept a raw key or its hash: both identify the key."""
    return hash_key(value) if value.startswith(PREFIX) else value
