"""``GET /routes``: every HTTP route this proxy serves, with its methods (LiteLLM's shape)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fastapi import APIRouter, Request
from starlette.routing import BaseRoute

from proxyllm.core.jsontypes import JSONObject
from proxyllm.server.deps import Caller

router = APIRouter(tags=["health"])


def walk(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Each route with its full path; included routers (which FastAPI may keep as one entry that
    wraps the router) are walked into."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif getattr(route, "endpoint", None) is not None:
            yield prefix + str(getattr(route, "path", "")), route


@router.get("/routes")
async def list_routes(request: Request, _: Caller) -> JSONObject:
    routes: list[JSONObject] = []
    for path, route in walk(request.app.routes):
        methods = getattr(route, "methods", None)
        endpoint = getattr(route, "endpoint", None)  # walk yields only routes that have one
        routes.append(
            {
                "path": path,
                "methods": sorted(methods) if methods else None,
                "name": getattr(route, "name", None),
                "endpoint": getattr(endpoint, "__name__", None) or type(endpoint).__name__,
            }
        )
    return {"routes": routes}
