"""Observability tests use the limits tests' helpers."""

from tests.limits.conftest import admin_for, namespace

__all__ = ["admin_for", "namespace"]  # redis_url comes from tests/conftest.py
