"""Health: liveness and readiness for the platform (no auth), ``/health`` probes every deployment."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from proxyllm import __version__
from proxyllm.core.deployment import Deployment
from proxyllm.errors import ProxyError
from proxyllm.server.deps import Caller, RuntimeDep

router = APIRouter(tags=["health"])
PROBE_TIMEOUT = 10.0


@router.get("/health/liveliness")
@router.get("/health/liveness", include_in_schema=False)
async def liveliness() -> str:
    return "I'm alive!"


@router.get("/health/readiness")
async def readiness(runtime: RuntimeDep) -> Response:
    report = await runtime.readiness()
    status = 200 if report["status"] == "healthy" else 503
    return Response(orjson.dumps(report), status_code=status, media_type="application/json")


async def _probe(dep: Deployment) -> tuple[Deployment, str | None]:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await dep.provider.check_health(dep)
    except ProxyError as err:
        return dep, err.message
    except TimeoutError:
        return dep, f"no answer within {PROBE_TIMEOUT:g}s"
    return dep, None


@router.get("/health")
async def health(runtime: RuntimeDep, caller: Caller) -> dict[str, Any]:
    """Each deployment's probe result and routing state (cooldown, in flight, usage this minute).

    With background health checks on, the latest background results are shown instead of probing.
    """
    deployments = runtime.router.deployments
    checker = runtime.health_checker
    if checker is not None and all(d.id in checker.results for d in deployments):
        results = [(d, checker.results[d.id].error) for d in deployments]
    else:
        results = await asyncio.gather(*(_probe(d) for d in deployments))
    status = runtime.router.status
    healthy = [{**d.public_info(), **status(d)} for d, err in results if err is None]
    unhealthy = [{**d.public_info(), **status(d), "error": err} for d, err in results if err is not None]
    return {
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": len(healthy),
        "unhealthy_count": len(unhealthy),
        "proxyllm_version": __version__,
    }
