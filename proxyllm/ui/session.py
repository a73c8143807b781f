"""The dashboard's sign-in session and its CSRF token.

The session is the signed-in key itself, sealed (AES-256-GCM) into an HttpOnly, SameSite=Strict
cookie, with the session's CSRF token, its id and its issue time. Every replica opens the same cookie:
the sealing key is derived (HKDF) from the master key, which also means that rotating the master key
signs everyone out. Without a master key (an open proxy) the sealing key is random per process.

Signing out revokes the session on the server: its id goes on a revocation list in the shared state
(Redis when configured, so every replica honours it; else this process) until the session would have
expired anyway. A session also ends when its key stops working (rotated, deleted, blocked, expired):
every request re-checks the key.

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

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.responses import Response

from proxyllm.core.jsontypes import JSONValue
from proxyllm.core.shared_state import SharedState

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
    sid: str = ""

    def __repr__(self) -> str:  # never print the key
        return f"Session(issued_at={self.issued_at})"


class SessionCodec:
    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(secret)

    def seal(self, session: Session) -> str:
        payload = orjson.dumps({"k": session.key, "c": session.csrf, "t": session.issued_at, "s": session.sid})
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, payload, CONTEXT)
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, value: str | None, *, now: float | None = None) -> Session | None:
        """The session in a cookie value; None when absent, altered, from another master key or expired."""
        if not value:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data: JSONValue = orjson.loads(self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], CONTEXT))
        except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        key, csrf, issued, sid = data.get("k"), data.get("c"), data.get("t"), data.get("s")
        if not isinstance(key, str) or not isinstance(csrf, str) or not isinstance(issued, int):
            return None
        if not isinstance(sid, str) or not sid:  # from before server-side revocation: sign in again
            return None
        moment = time.time() if now is None else now
        if not issued <= moment + 60 or moment - issued > SESSION_TTL:
            return None
        return Session(key, csrf, issued, sid)


class Revocations:
    """Sessions signed out before their time, shared by the replicas through ``state``."""

    def __init__(self, state: SharedState) -> None:
        self.state = state

    @staticmethod
    def _name(session: Session) -> str:
        return f"ui-revoked:{session.sid}"

    async def revoke(self, session: Session) -> None:
        left = session.issued_at + SESSION_TTL + 120 - time.time()
        await self.state.incr(self._name(session), 1, max(left, 60.0))

    async def revoked(self, session: Session) -> bool:
        return await self.state.incr(self._name(session), 0, SESSION_TTL) > 0


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
