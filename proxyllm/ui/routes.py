"""``/ui``: the dashboard's pages and assets, sign-in and sign-out, the session, and the API bridge."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from proxyllm.accounts.auth import Authenticator
from proxyllm.admin.actors import actor_of
from proxyllm.admin.permissions import Role
from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.db.database import Database
from proxyllm.ui import bridge
from proxyllm.ui.assets import Asset, assets, shell
from proxyllm.ui.session import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    Revocations,
    Session,
    SessionCodec,
    clear_cookie,
    codec_for,
    new_token,
    set_cookie,
    tokens_match,
)

log = logging.getLogger("proxyllm.ui")


def _authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.runtime.auth
    return auth


AuthDep = Annotated[Authenticator, Depends(_authenticator)]


def _database(request: Request) -> Database:
    db: Database = request.app.state.runtime.db
    return db


DatabaseDep = Annotated[Database, Depends(_database)]
router = APIRouter(include_in_schema=False)

# Paths the single-page app renders; each serves the same shell.
PAGES = ("keys", "users", "teams", "models", "spend", "billing", "billing/success", "billing/cancel", "usage")
MAX_LOGIN_BODY = 8 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _codec(request: Request) -> SessionCodec:
    return codec_for(request.app.state.runtime.auth.master_key)


def _revocations(request: Request) -> Revocations:
    revocations: Revocations | None = getattr(request.app.state, "ui_revocations", None)
    if revocations is None:
        revocations = Revocations(request.app.state.runtime.shared_state)
        request.app.state.ui_revocations = revocations
    return revocations


async def current_session(request: Request) -> Session | None:
    """The cookie's session, unless it was altered, expired or signed out (revoked on the server)."""
    session = _codec(request).open(request.cookies.get(SESSION_COOKIE))
    if session is not None and await _revocations(request).revoked(session):
        return None
    return session


def check_csrf(request: Request, session: Session | None) -> None:
    """State-changing requests carry the session's CSRF token (before sign-in: the cookie's)."""
    expected = session.csrf if session is not None else request.cookies.get(CSRF_COOKIE)
    if not tokens_match(request.headers.get(CSRF_HEADER), expected):
        raise ProxyError(
            ErrorKind.PERMISSION,
            "missing or wrong CSRF token: reload the dashboard and try again",
            code="csrf_failed",
        )


def _json(data: JSONObject, status: int = 200) -> Response:
    headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _asset(request: Request, asset: Asset, cache: str) -> Response:
    headers = {**PAGE_HEADERS, "etag": asset.etag, "cache-control": cache}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


async def page(request: Request) -> Response:
    return _asset(request, shell(), "no-cache")


router.add_api_route("/ui", page, methods=["GET"])
for _path in PAGES:
    router.add_api_route(f"/ui/{_path}", page, methods=["GET"])


@router.get("/ui/static/{name:path}")
async def static(name: str, request: Request) -> Response:
    asset = assets().get(name)
    if asset is None or name == "index.html":
        raise ProxyError(ErrorKind.NOT_FOUND, f"no dashboard file '{name}'")
    return _asset(request, asset, "no-cache")


async def _role(db: Database, principal: Principal) -> str:
    """ "admin" for the master key and keys of proxy_admin users (admin/permissions.py), else "customer"."""
    if principal.is_admin:
        return "admin"
    return "admin" if (await actor_of(principal, db)).role is Role.PROXY_ADMIN else "customer"


def _identity(principal: Principal, session: Session, role: str) -> JSONObject:
    return {
        "signed_in": True,
        "role": role,
        "key_alias": principal.key_alias,
        "user_id": principal.user_id,
        "team_id": principal.team_id,
        "csrf_token": session.csrf,
    }


@router.get("/ui/session")
async def session_info(request: Request, auth: AuthDep, db: DatabaseDep) -> Response:
    """Who is signed in (re-checked against the key's current state) and the CSRF token to send."""
    session = await current_session(request)
    reason = None
    if session is not None:
        try:
            principal = await auth.authenticate(session.key)
            return _json(_identity(principal, session, await _role(db, principal)))
        except ProxyError as error:
            if error.kind is not ErrorKind.AUTHENTICATION and error.kind is not ErrorKind.PERMISSION:
                raise
            reason = f"signed out: {error.message}"
    elif request.cookies.get(SESSION_COOKIE):
        reason = "your session has ended; sign in again"
    token = request.cookies.get(CSRF_COOKIE) or new_token()
    response = _json({"signed_in": False, "reason": reason, "csrf_token": token})
    if request.cookies.get(SESSION_COOKIE):
        clear_cookie(response, request, SESSION_COOKIE)
    if token != request.cookies.get(CSRF_COOKIE):
        set_cookie(response, request, CSRF_COOKIE, token)
    return response


async def _login_key(request: Request) -> str:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            raise ProxyError(ErrorKind.PAYLOAD_TOO_LARGE, "sign-in request too large")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise invalid_request('send the key as JSON: {"key": "..."}')
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_request("sign-in body is not valid JSON") from None
    value = data.get("key") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise invalid_request("enter the master key or your API key", param="key")
    key = value.strip()
    if len(key) > 512 or not key.isascii() or not key.isprintable():
        raise invalid_request("that is not an API key: keys are printable ASCII", param="key")
    return key


@router.post("/ui/login")
async def login(request: Request, auth: AuthDep, db: DatabaseDep) -> Response:
    check_csrf(request, await current_session(request))
    key = await _login_key(request)
    address = request.client.host if request.client else None
    try:
        principal = await auth.authenticate(key)
    except ProxyError as error:
        log.warning("dashboard sign-in refused from %s: %s", address, error.message)
        raise
    session = Session(key=key, csrf=new_token(), issued_at=int(time.time()), sid=new_token())
    role = await _role(db, principal)
    log.info("dashboard sign-in as %s (%s) from %s", role, principal.key_alias or principal.kind, address)
    response = _json(_identity(principal, session, role))
    set_cookie(response, request, SESSION_COOKIE, _codec(request).seal(session))
    set_cookie(response, request, CSRF_COOKIE, session.csrf)
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    session = await current_session(request)
    check_csrf(request, session)
    if session is not None:
        await _revocations(request).revoke(session)
    token = new_token()
    response = _json({"signed_in": False, "reason": None, "csrf_token": token})
    clear_cookie(response, request, SESSION_COOKIE)
    set_cookie(response, request, CSRF_COOKIE, token)
    return response


@router.api_route("/ui/api/{path:path}", methods=["GET", "POST"])
async def api(path: str, request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        raise ProxyError(ErrorKind.AUTHENTICATION, "sign in to the dashboard first", code="not_signed_in")
    if request.method != "GET":
        check_csrf(request, session)
    target = bridge.target_of(request.method, path)
    return await bridge.forward(request, target, session.key)
