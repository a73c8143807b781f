"""Stripe amounts are integer minor units (cents); the ledger counts decimal currency units."""

from __future__ import annotations

from decimal import Decimal


def to_minor_units(amount: Decimal) -> int:
    """Dollars (or any two-decimal currency) -> the integer cents Stripe wants."""
    return int((amount * 100).to_integral_value())


def from_minor_units(cents: int) -> Decimal:
    return Decimal(cents) / 100
