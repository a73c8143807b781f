"""Dashboard security over plain HTTP (no browser): cookie flags, CSRF, the bridge's allowlist and
credential handling, and that a customer's session reaches only that customer's data.

All on one proxy per module (``shared_proxy``): each test's users, keys, teams and sessions are its own,
and it reads nobody else's; the few failed sign-ins stay far under the throttle's 20 a minute."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from proxyllm.accounts.keys import hash_key
from proxyllm.ui.assets import assets
from proxyllm.ui.session import Session, codec_for
from tests.conftest import MASTER_KEY, ProxyServer
from tests.ui.conftest import chat, eventually


class Browser:
    """An HTTP client that behaves like the dashboard's page: cookies, and the CSRF token as a header."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""

    async def start(self) -> dict[str, Any]:
        answer = await self.client.get("/ui/session")
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        self.csrf = data["csrf_token"]
        return data

    async def sign_in(self, key: str, headers: dict[str, str] | None = None) -> httpx.Response:
        await self.start()
        headers = {**(headers or {}), "x-csrf-token": self.csrf}
        answer = await self.client.post("/ui/login", json={"key": key}, headers=headers)
        if answer.status_code == 200:
            self.csrf = answer.json()["csrf_token"]
        return answer

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/ui/api{path}", params=params)

    async def post(self, path: str, body: dict[str, Any], *, csrf: str | None = None) -> httpx.Response:
        token = self.csrf if csrf is None else csrf
        headers = {"x-csrf-token": token} if token else {}
        return await self.client.post(f"/ui/api{path}", json=body, headers=headers)


@pytest.fixture
async def browser_for(shared_proxy: ProxyServer) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make() -> Browser:
        client = httpx.AsyncClient(base_url=shared_proxy.url, timeout=30)
        clients.append(client)
        return Browser(client)

    yield make
    for client in clients:
        await client.aclose()


def cookie_attributes(response: httpx.Response, name: str) -> dict[str, str]:
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        if first.startswith(f"{name}="):
            parsed = {"value": first.partition("=")[2]}
            for attribute in attributes:
                key, _, value = attribute.partition("=")
                parsed[key.lower()] = value
            return parsed
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


async def customer(admin: httpx.AsyncClient, user_id: str, *, balance: str | None = None) -> str:
    assert (await admin.post("/user/new", json={"user_id": user_id, "auto_create_key": False})).status_code == 200
    answer = await admin.post("/key/generate", json={"user_id": user_id, "key_alias": f"{user_id}-key"})
    assert answer.status_code == 200, answer.text
    if balance:
        funded = await admin.post(
            "/stripe/balance/adjust", json={"account_id": user_id, "amount": balance, "reason": "t"}
        )
        assert funded.status_code == 200, funded.text
    return str(answer.json()["key"])


# -- the session cookie ----------------------------------------------------------------------------


async def test_session_cookie_is_httponly_strict_and_holds_no_readable_key(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, browser_for: Any
) -> None:
    key = await customer(shared_admin, "flags-user")
    page = browser_for()
    answer = await page.sign_in(key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "customer"
    assert key not in answer.text
    session = cookie_attributes(answer, "proxyllm_session")
    assert "httponly" in session and session["samesite"].lower() == "strict" and session["path"] == "/ui"
    assert "secure" not in session  # plain HTTP here
    assert "max-age" not in session and "expires" not in session  # ends with the browser session
    raw = base64.urlsafe_b64decode(session["value"] + "=" * (-len(session["value"]) % 4))
    assert key.encode() not in raw and key not in session["value"]
    csrf = cookie_attributes(answer, "proxyllm_csrf")
    assert "httponly" in csrf and csrf["samesite"].lower() == "strict"

    # Behind a TLS-terminating proxy the cookies are Secure.
    secure_page = browser_for()
    secured = await secure_page.sign_in(MASTER_KEY, headers={"x-forwarded-proto": "https"})
    assert secured.status_code == 200 and secured.json()["role"] == "admin"
    assert "secure" in cookie_attributes(secured, "proxyllm_session")
    assert "secure" in cookie_attributes(secured, "proxyllm_csrf")

    # The page and the session endpoint never carry the key.
    shell = await page.client.get("/ui/usage")
    assert shell.status_code == 200 and key not in shell.text
    assert "script-src 'self'" in shell.headers["content-security-policy"]
    assert shell.headers["x-frame-options"] == "DENY"
    info = await page.client.get("/ui/session")
    assert info.json()["signed_in"] is True and key not in info.text


async def test_a_tampered_foreign_or_expired_session_is_refused(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, browser_for: Any
) -> None:
    key = await customer(shared_admin, "tamper-user")
    page = browser_for()
    assert (await page.sign_in(key)).status_code == 200
    good = page.client.cookies["proxyllm_session"]

    def forged(value: str) -> Browser:
        other = browser_for()
        other.client.cookies.set("proxyllm_session", value, domain="127.0.0.1", path="/ui")
        return other

    flipped = good[:-4] + ("AAAA" if good[-4:] != "AAAA" else "BBBB")
    codec = codec_for(MASTER_KEY)
    stale = codec.seal(Session(key=key, csrf="t", issued_at=int(time.time()) - 13 * 3600))
    foreign = codec_for("sk-another-master").seal(Session(key=key, csrf="t", issued_at=int(time.time())))
    for value in (flipped, stale, foreign, "not-a-session"):
        intruder = forged(value)
        assert (await intruder.get("/key/info")).status_code == 401
        state = (await intruder.client.get("/ui/session")).json()
        assert state["signed_in"] is False and "ended" in state["reason"]

    # A key blocked after sign-in ends the session at once.
    assert (await page.get("/key/info")).status_code == 200
    assert (await shared_admin.post("/key/block", json={"key": key})).status_code == 200
    refused = await page.get("/key/info")
    assert refused.status_code == 401 and "blocked" in refused.json()["error"]["message"]
    state = await page.client.get("/ui/session")
    assert state.json()["signed_in"] is False and "blocked" in state.json()["reason"]


# -- CSRF ------------------------------------------------------------------------------------------


async def test_state_changes_without_the_csrf_token_are_refused(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, browser_for: Any
) -> None:
    page = browser_for()
    await page.start()
    for headers in ({}, {"x-csrf-token": "guessed"}):
        refused = await page.client.post("/ui/login", json={"key": MASTER_KEY}, headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    # A cross-site HTML form can send neither the header nor JSON.
    form = await page.client.post("/ui/login", data={"key": MASTER_KEY})
    assert form.status_code == 403
    assert "proxyllm_session" not in page.client.cookies

    before_login = page.csrf
    assert (await page.sign_in(MASTER_KEY)).status_code == 200
    assert page.csrf != before_login  # rotated at sign-in
    for token in ("", "guessed", before_login):
        refused = await page.post("/key/generate", {"key_alias": "csrf-victim"}, csrf=token)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "csrf_failed"
    listed = (await shared_admin.get("/key/list", params={"key_alias": "csrf-victim"})).json()
    assert listed["total_count"] == 0

    assert (await page.client.post("/ui/logout")).status_code == 403
    assert (await page.get("/key/list")).status_code == 200  # still signed in
    made = await page.post("/key/generate", {"key_alias": "csrf-ok"})
    assert made.status_code == 200, made.text
    assert (await page.client.post("/ui/logout", headers={"x-csrf-token": page.csrf})).status_code == 200
    assert (await page.get("/key/list")).status_code == 401


# -- the bridge ------------------------------------------------------------------------------------


async def test_bridge_forwards_only_allowlisted_paths_with_the_sessions_key(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, browser_for: Any
) -> None:
    key = await customer(shared_admin, "bridge-user")

    # No session: a key in the request's own headers does not open the bridge.
    anonymous = browser_for()
    for header in ("authorization", "x-api-key", "api-key"):
        value = f"Bearer {MASTER_KEY}" if header == "authorization" else MASTER_KEY
        answer = await anonymous.client.get("/ui/api/key/list", headers={header: value})
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "not_signed_in"

    # A customer's session cannot be lifted to admin by sending the master key along.
    page = browser_for()
    assert (await page.sign_in(key)).status_code == 200
    for header in ("authorization", "x-api-key", "api-key"):
        value = f"Bearer {MASTER_KEY}" if header == "authorization" else MASTER_KEY
        answer = await page.client.get("/ui/api/key/list", headers={header: value})
        assert answer.status_code == 403, (header, answer.text)

    admin_page = browser_for()
    assert (await admin_page.sign_in(MASTER_KEY)).status_code == 200
    assert (await admin_page.get("/key/list")).status_code == 200
    for method, path in (
        ("POST", "/ui/api/stripe/webhook"),
        ("POST", "/ui/api/v1/chat/completions"),
        ("GET", "/ui/api/health/readiness"),
        ("GET", "/ui/api/key/%2e%2e/key/list"),
        ("GET", "/ui/api//key/list"),
        ("GET", "/ui/api/ui/session"),
        ("POST", "/ui/api/key/list"),
        ("GET", "/ui/api/key/generate"),
    ):
        answer = await admin_page.client.request(
            method, path, headers={"x-csrf-token": admin_page.csrf}, json={} if method == "POST" else None
        )
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_in_dashboard"
    assert (await admin_page.client.delete("/ui/api/key/list")).status_code == 405

    # What the bridge answers is what the API answers, errors included.
    via_ui = await admin_page.get("/key/info", key="sk-nonexistent")
    direct = await shared_admin.get("/key/info", params={"key": "sk-nonexistent"})
    assert via_ui.status_code == direct.status_code == 404
    assert via_ui.json() == direct.json()
    assert via_ui.headers["cache-control"] == "no-store"


# -- a customer sees only their own account --------------------------------------------------------


async def test_customer_session_never_reaches_another_account(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, browser_for: Any
) -> None:
    mine = await customer(shared_admin, "cust-a", balance="5")
    theirs = await customer(shared_admin, "cust-b", balance="50")
    assert (await shared_admin.post("/team/new", json={"team_id": "team-b"})).status_code == 200
    for k in (mine, theirs):
        assert (await chat(shared_proxy.url, k)).status_code == 200

    async def both_logged() -> bool:  # each key's own rows: the shared proxy logs other tests' requests too
        for k in (mine, theirs):
            if not (await shared_admin.get("/spend/logs", params={"api_key": hash_key(k)})).json():
                return False
        return True

    await eventually(both_logged)
    page = browser_for()
    assert (await page.sign_in(mine)).status_code == 200

    own = await page.get("/stripe/balance")
    assert own.status_code == 200 and own.json()["account_id"] == "cust-a"
    assert (await page.get("/key/info")).json()["info"]["user_id"] == "cust-a"
    logs = (await page.get("/spend/logs")).json()
    assert logs and {log["api_key"] for log in logs} == {hash_key(mine)}
    ledger = (await page.get("/stripe/transactions")).json()["data"]
    assert ledger and all("cust-b" not in str(entry) for entry in ledger)

    guesses = [
        ("/stripe/balance", {"account_id": "cust-b"}),
        ("/stripe/balance", {"account_type": "team", "account_id": "team-b"}),
        ("/stripe/transactions", {"account_id": "cust-b"}),
        ("/stripe/subscription", {"account_id": "cust-b"}),
        ("/key/info", {"key": hash_key(theirs)}),
        ("/key/info", {"key": theirs}),
        ("/spend/logs", {"api_key": hash_key(theirs)}),
        ("/spend/logs", {"user_id": "cust-b"}),
        ("/spend/logs", {"team_id": "team-b"}),
        ("/key/list", {}),
        ("/key/list", {"user_id": "cust-b"}),
        ("/user/list", {}),
        ("/user/info", {"user_id": "cust-b"}),
        ("/team/list", {}),
        ("/team/info", {"team_id": "team-b"}),
        ("/global/spend", {}),
        ("/global/spend/report", {"group_by": "key"}),
        ("/stripe/balances", {}),
        ("/stripe/subscriptions", {}),
        ("/stripe/meter-events", {}),
    ]
    for path, params in guesses:
        answer = await page.get(path, **params)
        assert answer.status_code == 403, (path, params, answer.status_code, answer.text)

    balance_b = (await shared_admin.get("/stripe/balance", params={"account_id": "cust-b"})).json()["balance"]
    writes = [
        (
            "/stripe/topup",
            {"amount": "10", "success_url": "http://x/s", "cancel_url": "http://x/c", "account_id": "cust-b"},
        ),
        ("/stripe/balance/adjust", {"account_id": "cust-a", "amount": "100", "reason": "free money"}),
        ("/key/generate", {"user_id": "cust-b"}),
        ("/key/block", {"key": hash_key(theirs)}),
        ("/key/regenerate", {"key": hash_key(theirs)}),
        ("/key/delete", {"keys": [hash_key(theirs)]}),
        ("/user/update", {"user_id": "cust-b", "max_budget": "0"}),
        ("/team/member_add", {"team_id": "team-b", "member": {"user_id": "cust-a"}}),
    ]
    for path, body in writes:
        answer = await page.post(path, body)
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
    assert (await shared_admin.get("/stripe/balance", params={"account_id": "cust-b"})).json()["balance"] == balance_b
    assert (await shared_admin.get("/stripe/balance", params={"account_id": "cust-a"})).json()["total_topups"] == 0.0
    assert (await chat(shared_proxy.url, theirs)).status_code == 200  # their key untouched


# -- what /ui serves -------------------------------------------------------------------------------


async def test_pages_and_packaged_assets_only(shared_proxy: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=shared_proxy.url, timeout=30) as client:
        for path in ("/ui", "/ui/keys", "/ui/billing/success?session_id=cs_1", "/ui/billing/cancel"):
            page = await client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
            assert '<script type="module" src="/ui/static/js/app.js">' in page.text
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert (await client.get("/ui/nope")).status_code == 404

        script = await client.get("/ui/static/js/app.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert script.headers["x-content-type-options"] == "nosniff"
        again = await client.get("/ui/static/js/app.js", headers={"if-none-match": script.headers["etag"]})
        assert again.status_code == 304 and not again.content
        assert (await client.get("/ui/static/app.css")).headers["content-type"].startswith("text/css")
        for path in (
            "/ui/static/nope.js",
            "/ui/static/%2e%2e/routes.py",
            "/ui/static/../session.py",
            "/ui/static/index.html",
        ):
            assert (await client.get(path)).status_code == 404, path
    # Nothing shipped loads anything from elsewhere (the SVG namespace is a name, not a fetch).
    for name, asset in assets().items():
        text = asset.body.decode().replace("http://www.w3.org/2000/svg", "")
        assert not re.search(r"(https?:)?//[\w.-]+\.[a-z]{2,}", text), name
        assert not re.search(r"@import|url\(", text), name


async def test_sign_in_input_errors_are_clear(shared_proxy: ProxyServer, browser_for: Any) -> None:
    page = browser_for()
    await page.start()
    token = {"x-csrf-token": page.csrf}
    cases = [
        (
            {"content": b"key=sk-1", "headers": {**token, "content-type": "application/x-www-form-urlencoded"}},
            400,
            "JSON",
        ),
        ({"content": b"{not json", "headers": {**token, "content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"key": "   "}, "headers": token}, 400, "enter the master key"),
        ({"json": {"key": "sk-\u00e9t\u00e9"}, "headers": token}, 400, "printable ASCII"),
        ({"json": ["sk-1"], "headers": token}, 400, "enter the master key"),
        ({"content": b"x" * 9000, "headers": {**token, "content-type": "application/json"}}, 413, "too large"),
        ({"json": {"key": "sk-unknown"}, "headers": token}, 401, "invalid API key"),
    ]
    for kwargs, status, words in cases:
        answer = await page.client.post("/ui/login", **kwargs)
        assert answer.status_code == status, (kwargs, answer.text)
        assert words in answer.json()["error"]["message"]
    assert "proxyllm_session" not in page.client.cookies


async def test_a_proxy_admin_users_key_gets_the_admin_view(
    shared_proxy: ProxyServer, shared_admin: httpx.AsyncClient, browser_for: Any
) -> None:
    key = await customer(shared_admin, "ops-lead")
    page = browser_for()
    assert (await page.sign_in(key)).json()["role"] == "customer"
    assert (await page.get("/key/list")).status_code == 403
    promoted = await shared_admin.post("/user/update", json={"user_id": "ops-lead", "user_role": "proxy_admin"})
    assert promoted.status_code == 200, promoted.text
    assert (await page.client.get("/ui/session")).json()["role"] == "admin"
    assert (await page.get("/key/list")).status_code == 200
    assert (await page.post("/team/new", {"team_id": "ops"})).status_code == 200
