"""The few Stripe calls the proxy makes, through the official SDK's async client (httpx)."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import stripe

from proxyllm.billing.amounts import to_minor_units
from proxyllm.billing.settings import BillingSettings
from proxyllm.errors import ErrorKind, ProxyError

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

    async def list_meters(self) -> list[dict[str, Any]]:
        try:
            page = await self.client.v1.billing.meters.list_async({"limit": 100})
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return [m.to_dict() for m in page.data]

    async def create_meter(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            meter = await self.client.v1.billing.meters.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return meter.to_dict()

    async def deactivate_meter(self, meter_id: str) -> dict[str, Any]:
        try:
            meter = await self.client.v1.billing.meters.deactivate_async(meter_id)
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return meter.to_dict()

    async def create_customer(self, *, account_type: str, account_id: str, email: str | None) -> str:
        params: dict[str, Any] = {
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
    ) -> tuple[str, str]:
        params: dict[str, Any] = {
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
            "payment_intent_data": {"metadata": metadata},
        }
        try:
            session = await self.client.v1.checkout.sessions.create_async(params)  # type: ignore[arg-type]
        except stripe.StripeError as error:
            raise stripe_failure(error) from None
        return str(session.id), str(session.url)
