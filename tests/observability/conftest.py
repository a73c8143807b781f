"""Observability tests use the limits tests' helpers."""

from tests.limits.conftest import namespace

__all__ = ["namespace"]  # redis_url comes from tests/conftest.py
