"""``GET /routes``: every HTTP route this proxy serves, with its methods (LiteLLM's shape)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from proxyllm.server.deps import Caller

router = APIRouter(tags=["health"])


@router.get("/routes")
async def list_routes(request: Request, _: Caller) -> dict[str, Any]:
    routes: list[dict[str, Any]] = []
    for route in request.app.routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None:
            continue
        methods = getattr(route, "methods", None)
        routes.append(
            {
                "path": getattr(route, "path", None),
                "methods": sorted(methods) if methods else None,
                "name": getattr(route, "name", None),
                "endpoint": getattr(endpoint, "__name__", None) or type(endpoint).__name__,
            }
        )
    return {"routes": routes}
