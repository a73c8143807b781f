"""Secrets at rest: AES-256-GCM (``cryptography``) under a key derived from ``LITELLM_SALT_KEY``.

The key is stretched with scrypt once per process, so a short salt key is still costly to guess from
a stolen database. Each value is sealed with a fresh 96-bit nonce and bound to a context (the model
id) as associated data: a ciphertext copied onto another row does not open. Stored form:
``aesgcm1:<urlsafe base64 of nonce + ciphertext + tag>``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

PREFIX = "aesgcm1:"
NONCE_BYTES = 12
KDF_SALT = b"proxyllm/secrets-at-rest/v1"


class SecretError(Exception):
    """A stored secret cannot be opened: another salt key, or the value was altered."""


@functools.lru_cache(maxsize=4)
def _derive(salt_key: str) -> bytes:
    return Scrypt(salt=KDF_SALT, length=32, n=2**14, r=8, p=1).derive(salt_key.encode())


class SecretBox:
    def __init__(self, salt_key: str) -> None:
        if not salt_key:
            raise ValueError("an empty salt key cannot protect anything")
        self._salt_key = salt_key

    @functools.cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(_derive(self._salt_key))

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, context: str) -> bytes:
        if not token.startswith(PREFIX):
            raise SecretError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(token[len(PREFIX) :].encode("ascii"))
        except (binascii.Error, ValueError):
            raise SecretError("sealed value is not valid base64") from None
        if len(raw) <= NONCE_BYTES:
            raise SecretError("sealed value is truncated")
        try:
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except InvalidTag:
            raise SecretError("sealed value does not open with this LITELLM_SALT_KEY (or was altered)") from None
