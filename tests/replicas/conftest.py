"""Replica tests use the limits tests' helpers: Redis, a unique namespace, admin clients."""

from tests.limits.conftest import module_namespace, namespace

__all__ = ["module_namespace", "namespace"]  # redis_url comes from tests/conftest.py
