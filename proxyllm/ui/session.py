"""The dashboard's sign-in session and its CSRF token.

The session is the signed-in key itself, sealed (AES-256-GCM) into an HttpOnly, SameSite=Strict
cookie, with the session's CSRF token and its issue time. Nothing is kept on the server, so every
replica opens the same cookie: the sealing key is derived (HKDF) from the master key, which also
means that rotating the master key signs everyone out. Without a master key (an open proxy) the
sealing key is random per process.

CSRF: a random token lives in a second cookie (HttpOnly too) and inside the sealed session; the page
learns it from ``GET /ui/session`` (same-origin JSON) and sends it back as ``X-CSRF-Token`` on every
state-changing request. A request is accepted when the header equals the session's token (or, before
sign-in, the cookie's): a cross-site page can neither read the token nor set the header.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "proxyllm_session"
CSRF_COOKIE = "proxyllm_csrf"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/ui"
SESSION_TTL = 12 * 3600  # seconds; the cookie itself ends with the browser session
NONCE_BYTES = 12
CONTEXT = b"proxyllm/ui-session/v1"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class Session:
    key: str
    csrf: str
    issued_at: int

    def __repr__(self) -> str:  # never print the key
        return f"Session(issued_at={self.issued_at})"


class SessionCodec:
    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(secret)

    def seal(self, session: Session) -> str:
        payload = orjson.dumps({"k": session.key, "c": session.csrf, "t": session.issued_at})
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, payload, CONTEXT)
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, value: str | None, *, now: float | None = None) -> Session | None:
        """The session in a cookie value; None when absent, altered, from another master key or expired."""
        if not value:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data: Any = orjson.loads(self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], CONTEXT))
        except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        key, csrf, issued = data.get("k"), data.get("c"), data.get("t")
        if not isinstance(key, str) or not isinstance(csrf, str) or not isinstance(issued, int):
            return None
        moment = time.time() if now is None else now
        if not issued <= moment + 60 or moment - issued > SESSION_TTL:
            return None
        return Session(key, csrf, issued)


@functools.lru_cache(maxsize=4)
def codec_for(master_key: str | None) -> SessionCodec:
    if not master_key:
        return SessionCodec(os.urandom(32))
    secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=CONTEXT, info=b"session cookie").derive(
        master_key.encode()
    )
    return SessionCodec(secret)


def is_secure(request: Request) -> bool:
    """Served over HTTPS: directly, or behind a proxy that says so."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="strict", secure=is_secure(request))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=is_secure(request))
