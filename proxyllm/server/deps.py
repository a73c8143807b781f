"""FastAPI dependencies for the non-hot-path routes: the runtime and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from proxyllm.accounts.auth import key_from_headers
from proxyllm.admin.actors import actor_of
from proxyllm.admin.permissions import Actor, Own, grant
from proxyllm.admin.unit import AdminParts
from proxyllm.core.context import Principal
from proxyllm.server.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def admin_parts(runtime: RuntimeDep) -> AdminParts:
    """The parts of the runtime the admin services use (admin/unit.py)."""
    return AdminParts(db=runtime.db, keys=runtime.keys, billing=runtime.billing, check_models=runtime.check_models)


AdminPartsDep = Annotated[AdminParts, Depends(admin_parts)]


async def authenticated(request: Request, runtime: RuntimeDep) -> Principal:
    return await runtime.auth.authenticate(key_from_headers(request.scope["headers"]))


Caller = Annotated[Principal, Depends(authenticated)]


async def admin_actor(request: Request, caller: Caller, runtime: RuntimeDep) -> Actor:
    """The caller with what the permission table (admin/permissions.py) grants it on this route; 403
    when its role may not call the route. Routes that grant ownership check it through ``Actor``."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.scope["path"]
    return grant(await actor_of(caller, runtime.db), request.method, path)


AdminActor = Annotated[Actor, Depends(admin_actor)]


async def admin(actor: AdminActor) -> Principal:
    """For routes that act on everything: the table's rule, and a role that may act on any object.
    A route whose rule grants less (ownership, or "its own models") takes ``AdminActor`` and checks."""
    if Own.ANY not in actor.granted:
        raise actor.refuse("objects it does not own")
    return actor.principal


Admin = Annotated[Principal, Depends(admin)]
