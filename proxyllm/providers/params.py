"""Checking request parameters against what a provider supports (``drop_params``)."""

from __future__ import annotations

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject


def drop_unsupported(body: JSONObject, supported: frozenset[str], *, drop: bool, provider: str) -> JSONObject:
    """Return ``body`` without unsupported keys when ``drop``; otherwise refuse the first one."""
    extra = [k for k, v in body.items() if v is not None and k not in supported]
    if not extra:
        return body
    if drop:
        return {k: v for k, v in body.items() if k not in extra}
    raise invalid_request(
        f"{provider} does not support parameter '{extra[0]}'. Remove it, or set drop_params: true "
        "(in litellm_settings, the model's litellm_params, or the request) to drop it.",
        param=extra[0],
        code="unsupported_params",
    )
