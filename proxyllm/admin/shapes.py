"""LiteLLM's request bodies carry many fields proxyllm does not use: they are accepted, ignored, logged
once per call and named in the ``x-litellm-ignored-fields`` response header."""

from __future__ import annotations

import logging
import re

from pydantic import BaseModel
from starlette.responses import Response

log = logging.getLogger("proxyllm.admin")
HEADER = "x-litellm-ignored-fields"
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
MAX_NAMES = 32


def ignored_fields(body: BaseModel, prefix: str = "") -> list[str]:
    """The names of fields the body had that its model does not know (nested models included)."""
    names = [prefix + name for name in (body.model_extra or {})]
    for name in type(body).model_fields:
        value = getattr(body, name, None)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, BaseModel):
                names.extend(ignored_fields(item, f"{prefix}{name}."))
    return names


def report_ignored(body: BaseModel, response: Response, route: str) -> None:
    names = ignored_fields(body)
    if not names:
        return
    shown = [n for n in dict.fromkeys(names) if _NAME.fullmatch(n)][:MAX_NAMES]
    if len(shown) < len(set(names)):
        shown.append("...")
    log.info("%s: ignored fields not used by proxyllm: %s", route, ", ".join(shown))
    response.headers[HEADER] = ", ".join(shown)
