"""FastAPI dependencies for the non-hot-path routes: the runtime and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from proxyllm.accounts.auth import key_from_headers
from proxyllm.core.context import Principal
from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.server.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticated(request: Request, runtime: RuntimeDep) -> Principal:
    return await runtime.auth.authenticate(key_from_headers(request.scope["headers"]))


Caller = Annotated[Principal, Depends(authenticated)]


async def admin(caller: Caller) -> Principal:
    if not caller.is_admin:
        raise ProxyError(ErrorKind.PERMISSION, "only the master key may call this endpoint", code="not_admin")
    return caller


Admin = Annotated[Principal, Depends(admin)]
