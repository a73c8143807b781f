"""Cache tests use the limits tests' helpers: Redis, a unique namespace, admin clients."""

from tests.limits.conftest import namespace

__all__ = ["namespace"]  # redis_url comes from tests/conftest.py
