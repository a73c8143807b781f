"""A fake Stripe on 127.0.0.1: the API calls the proxy makes, and a checkout page a browser can pay on.

- ``POST /v1/customers``, ``GET /v1/customers/{id}``, ``POST /v1/checkout/sessions`` — form-encoded, as
  the stripe SDK sends them; answers in Stripe's JSON shapes. Requests without a secret key get 401.
- ``GET /c/pay/{session}`` is the hosted checkout page (served as ``http://localhost:<port>`` so it is
  another site than the proxy on 127.0.0.1, as Stripe's is); "Pay" delivers a signed
  ``checkout.session.completed`` webhook to ``webhook_url`` and then redirects to the success URL, as
  Stripe does. "Cancel" goes to the cancel URL.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
import uuid
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tests.fakes.base import free_port


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message}}, status=status)


def _metadata(form: dict[str, str]) -> dict[str, str]:
    return {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[") and k.endswith("]")}


class FakeStripeUpstream:
    def __init__(self, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret
        self.webhook_url: str | None = None
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.deliveries: list[tuple[int, str]] = []  # (status, body) the proxy answered each webhook with
        self.port = 0
        self.runner: web.AppRunner | None = None
        self.app = web.Application()
        self.app.router.add_post("/v1/customers", self._create_customer)
        self.app.router.add_get("/v1/customers/{id}", self._get_customer)
        self.app.router.add_post("/v1/checkout/sessions", self._create_session)
        self.app.router.add_get("/c/pay/{id}", self._checkout_page)
        self.app.router.add_post("/c/pay/{id}", self._pay)
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        self.app.router.add_post("/v1/billing_portal/sessions", self._create_portal)
        self.app.router.add_get("/p/session/{id}", self._portal_page)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def checkout_base(self) -> str:
        return f"http://localhost:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    # -- the API ---------------------------------------------------------------------------------

    @staticmethod
    def _authorized(request: web.Request) -> bool:
        return request.headers.get("authorization", "").startswith("Bearer sk_")

    async def _create_customer(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "Invalid API Key provided", "invalid_request_error")
        form = dict(await request.post())
        customer_id = f"cus_fake{len(self.customers) + 1}"
        customer = {
            "id": customer_id,
            "object": "customer",
            "email": form.get("email"),
            "description": form.get("description"),
            "metadata": _metadata({k: str(v) for k, v in form.items()}),
        }
        self.customers[customer_id] = customer
        return web.json_response(customer)

    async def _get_customer(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "Invalid API Key provided")
        customer = self.customers.get(request.match_info["id"])
        if customer is None:
            return _error(404, f"No such customer: '{request.match_info['id']}'")
        return web.json_response(customer)

    async def _create_session(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "Invalid API Key provided")
        form = {k: str(v) for k, v in (await request.post()).items()}
        setup = form.get("mode") == "setup"
        try:
            amount = 0 if setup else int(form["line_items[0][price_data][unit_amount]"])
        except (KeyError, ValueError):
            return _error(400, "Missing required param: line_items[0][price_data][unit_amount].")
        for required in ("success_url", "cancel_url", "customer"):
            if not form.get(required):
                return _error(400, f"Missing required param: {required}.")
        session_id = f"cs_test_{uuid.uuid4().hex[:16]}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form.get("mode", "payment"),
            "amount_total": amount,
            "currency": form.get("line_items[0][price_data][currency]") or form.get("currency", "usd"),
            "customer": form["customer"],
            "client_reference_id": form.get("client_reference_id"),
            "metadata": _metadata(form),
            "payment_status": "unpaid",
            "status": "open",
            "success_url": form["success_url"],
            "cancel_url": form["cancel_url"],
            "url": f"{self.checkout_base}/c/pay/{session_id}",
        }
        if setup:
            prefix = "setup_intent_data[metadata]["
            session["setup_metadata"] = {k[len(prefix) : -1]: v for k, v in form.items() if k.startswith(prefix)}
        self.sessions[session_id] = session
        return web.json_response(session)

    # -- the hosted checkout page ----------------------------------------------------------------

    async def _checkout_page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="no such checkout session")
        if session["mode"] == "setup":
            title = "<title>Fake Stripe Checkout</title>"
            head = f'<!doctype html><html lang="en"><head><meta charset="utf-8">{title}</head>'
            page = f"""{head}
<body><main><h1>Fake Stripe Checkout</h1><p>Save a card for future payments.</p>
<form method="post"><button type="submit">Save card</button></form>
<p><a href="{html.escape(session["cancel_url"])}">Cancel and go back</a></p></main></body></html>"""
            return web.Response(text=page, content_type="text/html")
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Stripe Checkout</title></head>
<body><main><h1>Fake Stripe Checkout</h1><p>Pay <strong id="amount">{html.escape(amount)}</strong> for API credits.</p>
<form method="post"><button type="submit">Pay {html.escape(amount)}</button></form>
<p><a href="{html.escape(session["cancel_url"])}">Cancel and go back</a></p></main></body></html>"""
        return web.Response(text=page, content_type="text/html")

    def completed_event(self, session: dict[str, Any]) -> dict[str, Any]:
        payment = {k: session[k] for k in ("id", "object", "mode", "amount_total", "currency", "customer", "metadata")}
        return {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {"object": {**payment, "payment_status": "paid", "payment_intent": session["payment_intent"]}},
        }

    def setup_event(self, session: dict[str, Any]) -> dict[str, Any]:
        """A setup-mode session's card is saved: ``setup_intent.succeeded`` with the intent's metadata."""
        return {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": "setup_intent.succeeded",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": f"seti_{uuid.uuid4().hex[:16]}",
                    "object": "setup_intent",
                    "status": "succeeded",
                    "customer": session["customer"],
                    "payment_method": f"pm_{uuid.uuid4().hex[:12]}",
                    "metadata": session.get("setup_metadata", {}),
                }
            },
        }

    async def _create_portal(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "Invalid API Key provided")
        form = {k: str(v) for k, v in (await request.post()).items()}
        for required in ("customer", "return_url"):
            if not form.get(required):
                return _error(400, f"Missing required param: {required}.")
        portal_id = f"bps_{uuid.uuid4().hex[:16]}"
        portal = {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": form["customer"],
            "return_url": form["return_url"],
            "url": f"{self.checkout_base}/p/session/{portal_id}",
        }
        self.portal_sessions[portal_id] = portal
        return web.json_response(portal)

    async def _portal_page(self, request: web.Request) -> web.Response:
        portal = self.portal_sessions.get(request.match_info["id"])
        if portal is None:
            return web.Response(status=404, text="no such portal session")
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Billing Portal</title></head>
<body><main><h1>Fake Stripe Billing Portal</h1><p>Invoices and payment methods of {html.escape(portal["customer"])}.</p>
<p><a href="{html.escape(portal["return_url"])}">Return to the proxy</a></p></main></body></html>"""
        return web.Response(text=page, content_type="text/html")

    async def _pay(self, request: web.Request) -> web.StreamResponse:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.Response(status=404, text="no such checkout session")
        if self.webhook_url is None:
            return web.Response(status=500, text="the fake has no webhook_url to notify")
        session.setdefault("payment_intent", f"pi_{uuid.uuid4().hex[:16]}")
        session.update(payment_status="paid", status="complete")
        done = self.setup_event(session) if session["mode"] == "setup" else self.completed_event(session)
        payload = orjson.dumps(done)
        headers = {
            "stripe-signature": stripe_signature(payload, self.webhook_secret),
            "content-type": "application/json",
        }
        async with (
            aiohttp.ClientSession() as client,
            client.post(self.webhook_url, data=payload, headers=headers) as answer,
        ):
            self.deliveries.append((answer.status, await answer.text()))
            if answer.status >= 300:
                return web.Response(status=502, text=f"the webhook was refused: {answer.status}")
        raise web.HTTPSeeOther(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
