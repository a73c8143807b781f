"""Money in the database: exact integers of nano-dollars, exposed to Python as Decimal.

SQLite has no decimal type (SQLAlchemy's Numeric would store a float there), so money is stored as a
BIGINT count of 10^-9 dollars on every backend. Increments (``spend = spend + :delta``) stay exact.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

SCALE = 10**9
QUANTUM = Decimal(1) / SCALE


def to_units(amount: Decimal) -> int:
    return int((amount * SCALE).to_integral_value(rounding=ROUND_HALF_UP))


def from_units(units: int) -> Decimal:
    return (Decimal(units) / SCALE).quantize(QUANTUM)


class Money(TypeDecorator[Decimal]):
    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal or int, never float")
        return to_units(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_units(int(value))
