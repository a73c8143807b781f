"""What the budget and end-user routes share: the service's dependencies, ignored-field reporting."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Response
from pydantic import BaseModel

from proxyllm.admin.budgets import Admin as Services
from proxyllm.server.deps import RuntimeDep

log = logging.getLogger("proxyllm.admin")
IGNORED_HEADER = "x-litellm-ignored-fields"


def get_services(runtime: RuntimeDep) -> Services:
    return Services(
        db=runtime.db,
        end_users=runtime.end_users,
        billing=runtime.billing,
        serves=lambda name: runtime.router.find(name) is not None,
    )


EndUserAdmin = Annotated[Services, Depends(get_services)]


def report_ignored(response: Response, body: BaseModel) -> None:
    """LiteLLM fields proxyllm accepts but does not use: one log line and a response header."""
    extra = sorted(body.model_extra or ())
    if extra:
        names = ",".join(_token(name) for name in extra[:20])
        log.info("ignored fields in an admin request: %s", names)
        response.headers[IGNORED_HEADER] = names


def _token(name: str) -> str:
    """A client's field name as header-safe text (no CR/LF or other control characters)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_-." else "?" for c in name[:64])
