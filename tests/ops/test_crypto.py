"""Secrets at rest: authenticated encryption under the salt key."""

from __future__ import annotations

import base64

import pytest

from proxyllm.core.masking import is_secret_name, masked, split_secrets
from proxyllm.ops.crypto import PREFIX, SecretBox, SecretError


def test_round_trip_and_fresh_nonce() -> None:
    box = SecretBox("salt-one")
    a, b = box.seal(b'{"api_key": "sk-abc"}', "model-1"), box.seal(b'{"api_key": "sk-abc"}', "model-1")
    assert a.startswith(PREFIX) and a != b  # a fresh nonce every time
    assert "sk-abc" not in a
    assert box.open(a, "model-1") == box.open(b, "model-1") == b'{"api_key": "sk-abc"}'


def test_wrong_key_other_row_and_tampering_do_not_open() -> None:
    sealed = SecretBox("salt-one").seal(b"secret", "model-1")
    with pytest.raises(SecretError, match="LITELLM_SALT_KEY"):
        SecretBox("salt-two").open(sealed, "model-1")
    with pytest.raises(SecretError):
        SecretBox("salt-one").open(sealed, "model-2")  # copied onto another row
    raw = bytearray(base64.urlsafe_b64decode(sealed[len(PREFIX) :]))
    raw[-1] ^= 1
    with pytest.raises(SecretError):
        SecretBox("salt-one").open(PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode(), "model-1")
    for garbage in ("plain", PREFIX + "!!!", PREFIX + "AAAA"):
        with pytest.raises(SecretError):
            SecretBox("salt-one").open(garbage, "model-1")
    with pytest.raises(ValueError):
        SecretBox("")


def test_secret_names() -> None:
    for name in (
        "api_key",
        "aws_secret_access_key",
        "aws_access_key_id",
        "aws_session_token",
        "azure_ad_token",
        "vertex_credentials",
        "client_secret",
        "extra_headers",
        "litellm_params.api_key",
        "X-Api-Key",
    ):
        assert is_secret_name(name), name
    for name in ("model", "api_base", "max_tokens", "input_cost_per_token", "rpm", "api_version", "token_count"):
        assert not is_secret_name(name), name
    clear, secret = split_secrets({"model": "openai/x", "api_key": "sk-1", "extra_headers": {"a": "b"}})
    assert clear == {"model": "openai/x"} and secret == {"api_key": "sk-1", "extra_headers": {"a": "b"}}
    shown = masked({"api_key": "sk-0123456789", "nested": {"password": "hunter2", "x": 1}, "token": "abc"})
    assert shown == {"api_key": "sk-****89", "nested": {"password": "****", "x": 1}, "token": "****"}
    assert masked({"token": "abcdef0123"}, keep=frozenset({"token"})) == {"token": "abcdef0123"}
