"""The few Stripe calls the proxy makes, through the official SDK's async client (httpx)."""

from __future__ import annotations

import logging
from decimal import Decimal

import stripe

from proxyllm.billing.amounts import to_minor_units
from proxyllm.billing.settings import BillingSettings
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject

log = logging.getLogger("proxyllm.billing")


def stripe_failure(error: stripe.StripeError) -> ProxyError:
    message = getattr(error, "user_message", None) or type(error).__name__
    status = getattr(error, "http_status", None)
    if status is not None and 400 <= status < 500 and status != 429:
        return ProxyError(ErrorKind.INVALID_REQUEST, f"Stripe refused the request: {message}", code="stripe_error")
    return ProxyError(ErrorKind.UNAVAILABLE, f"Stripe is unavailable: {message}", code="stripe_unavailable")


class StripeAPI:
    def __init__(self, settings: BillingSettings) -> None:
        base = self.base_addresses(settings)
        self.client = stripe.StripeClient(
            settings.api_key,
            http_client=stripe.HTTPXClient(),
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=2,
        )
        # Meter events retry on the outbox's own schedule, never inside a call.
        self.meter_client = stripe.StripeClient(
            settings.api_key,
            http_client=stripe.HTTPXClient(),
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=0,
        )

    @staticmethod
    def base_addresses(settings: BillingSettings) -> dict[str, str] | None:
        if not settings.api_base:
            return None
        base = settings.api_base.rstrip("/")
        return {"api": base, "meter_events": base}

    async def list_meters(self) -> list[JSONObject]:
        try:
            page = await self.client.v1.billing.meters.list_async({"limit": 100})
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return [m.to_dict() for m in page.data]

    async def create_meter(self, params: JSONObject) -> JSONObject:
        try:
            meter = await self.client.v1.billing.meters.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return meter.to_dict()

    async def deactivate_meter(self, meter_id: str) -> JSONObject:
        try:
            meter = await self.client.v1.billing.meters.deactivate_async(meter_id)
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return meter.to_dict()

    async def create_customer(self, *, account_type: str, account_id: str, email: str | None) -> str:
        params: JSONObject = {
            "metadata": {"proxyllm_account_type": account_type, "proxyllm_account_id": account_id},
            "description": f"proxyllm {account_type} {account_id}",
        }
        if email:
            params["email"] = email
        try:
            customer = await self.client.v1.customers.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return str(customer.id)

    async def retrieve_customer(self, customer_id: str) -> bool:
        """True when the customer exists (and is not deleted)."""
        try:
            customer = await self.client.v1.customers.retrieve_async(customer_id)
        except stripe.InvalidRequestError:
            return False
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return not getattr(customer, "deleted", False)

    async def create_checkout(
        self,
        *,
        customer: str,
        amount: Decimal,
        currency: str,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        receipt_email: str | None = None,
    ) -> tuple[str, str]:
        payment: JSONObject = {"metadata": metadata}
        if receipt_email:
            payment["receipt_email"] = receipt_email  # Stripe emails the receipt
        params: JSONObject = {
            "mode": "payment",
            "customer": customer,
            "client_reference_id": f"{metadata['proxyllm_account_type']}:{metadata['proxyllm_account_id']}",
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": to_minor_units(amount),
                        "product_data": {"name": "API credits"},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": payment,
        }
        try:
            session = await self.client.v1.checkout.sessions.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return str(session.id), str(session.url)

    # -- saved cards, off-session payments, the billing portal (billing/recharge.py, routes/billing_portal.py)

    async def create_setup_checkout(
        self, *, customer: str, currency: str, success_url: str, cancel_url: str, metadata: dict[str, str]
    ) -> tuple[str, str]:
        """A Checkout Session that only saves a card for later off-session payments."""
        params: JSONObject = {
            "mode": "setup",
            "customer": customer,
            "currency": currency,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
        }
        try:
            session = await self.client.v1.checkout.sessions.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return str(session.id), str(session.url)

    async def create_setup_intent(self, *, customer: str, metadata: dict[str, str]) -> tuple[str, str]:
        """A SetupIntent (for Stripe.js / Elements): its id and client secret."""
        params: JSONObject = {"customer": customer, "usage": "off_session", "metadata": metadata}
        try:
            intent = await self.client.v1.setup_intents.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return str(intent.id), str(intent.client_secret)

    async def charge_off_session(
        self,
        *,
        customer: str,
        payment_method: str,
        amount: Decimal,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        receipt_email: str | None,
    ) -> tuple[str, str]:
        """Create and confirm an off-session PaymentIntent: (id, status). A decline raises
        ``stripe.CardError``; the same idempotency key never creates a second PaymentIntent."""
        params: JSONObject = {
            "amount": to_minor_units(amount),
            "currency": currency,
            "customer": customer,
            "payment_method": payment_method,
            "off_session": True,
            "confirm": True,
            "metadata": metadata,
            "description": "API credits (automatic recharge)",
        }
        if receipt_email:
            params["receipt_email"] = receipt_email
        intent = await self.client.v1.payment_intents.create_async(
            params,  # type: ignore[arg-type]
            {"idempotency_key": idempotency_key},
        )
        return str(intent.id), str(intent.status)

    async def create_portal_session(self, *, customer: str, return_url: str) -> str:
        params: JSONObject = {"customer": customer, "return_url": return_url}
        try:
            session = await self.client.v1.billing_portal.sessions.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return str(session.url)
