"""The cache key: a hash of the normalised request, never of who sent it.

What goes in: the operation, the model group the request resolves to (so aliases share entries),
whether it streams, and every body field that can change the answer (messages or input, sampling
parameters, tools, response format, stream options, ...). What stays out: the caller's key (it is
never in the body), the end-user id ``user``, fields set to null (the same as absent) and the
proxy's own fields, which were taken out of the body before (``fallbacks``, ``cache``, ``metadata``).
Keys are sorted, so field order does not matter.
"""

from __future__ import annotations

import hashlib

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject

IGNORED = frozenset({"model", "stream", "stream_options", "user"})


def request_digest(ctx: RequestContext, group: str) -> str:
    body = {k: v for k, v in ctx.body.items() if v is not None and k not in IGNORED}
    material: JSONObject = {"operation": ctx.operation.value, "model": group, "stream": ctx.stream, "body": body}
    if ctx.stream:
        material["stream_options"] = ctx.body.get("stream_options")
    native = ctx.native
    if native is not None:  # e.g. an Anthropic Messages request carries more than its OpenAI translation
        body = {k: v for k, v in native.body.items() if k not in IGNORED}
        material["native"] = [native.api, native.path, body]  # the answer comes back in that API's format
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()
