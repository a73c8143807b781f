"""Health: liveness and readiness for the platform (no auth), ``/health`` probes every deployment.

``/health`` is for admins only (it names every upstream, its address and its errors) and its probes are
rate limited: one round at a time, its results reused for ``general_settings.health_probe_cache_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from proxyllm import __version__
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.masking import mask_text
from proxyllm.server.deps import Admin, RuntimeDep
from proxyllm.server.runtime import Runtime

router = APIRouter(tags=["health"])
log = logging.getLogger("proxyllm.health")
PROBE_TIMEOUT = 10.0
# The LiteLLM proxy release whose admin and client APIs proxyllm is checked against
# (docs/litellm-compatibility.md); ``proxyllm_version`` is this package's own.
LITELLM_VERSION = "1.108.7"
Results = list[tuple[Deployment, str | None]]


@router.get("/health/liveliness")
@router.get("/health/liveness", include_in_schema=False)
async def liveliness() -> str:
    return "I'm alive!"


@router.get("/health/readiness")
async def readiness(runtime: RuntimeDep) -> Response:
    report = await runtime.readiness()
    report["litellm_version"] = LITELLM_VERSION  # the LiteLLM release whose API this one follows
    status = 200 if report["status"] == "healthy" else 503
    return Response(orjson.dumps(report), status_code=status, media_type="application/json")


async def _probe(dep: Deployment) -> tuple[Deployment, str | None]:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await dep.provider.check_health(dep)
    except ProxyError as err:
        return dep, mask_text(err.message)
    except TimeoutError:
        return dep, f"no answer within {PROBE_TIMEOUT:g}s"
    except Exception as exc:  # one broken deployment never fails the whole report
        log.warning("health probe of %s failed: %s", dep.describe(), type(exc).__name__)
        return dep, f"probe failed: {type(exc).__name__}"
    return dep, None


class ProbeCache:
    """One probe round at a time; its results serve every caller for ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.lock = asyncio.Lock()
        self.taken = 0.0
        self.results: Results | None = None
        self.deployments: list[Deployment] = []

    async def results_for(self, deployments: list[Deployment]) -> Results:
        async with self.lock:
            fresh = time.monotonic() - self.taken < self.ttl
            if self.results is None or not fresh or self.deployments != deployments:
                self.results = list(await asyncio.gather(*(_probe(d) for d in deployments)))
                self.deployments = list(deployments)
                self.taken = time.monotonic()
            return self.results


def _cache(request: Request, runtime: Runtime) -> ProbeCache:
    cache: ProbeCache | None = getattr(request.app.state, "health_probes", None)
    if cache is None:
        cache = ProbeCache(runtime.config.general_settings.health_probe_cache_seconds)
        request.app.state.health_probes = cache
    return cache


@router.get("/health")
async def health(request: Request, runtime: RuntimeDep, _: Admin) -> JSONObject:
    """Each deployment's probe result and routing state (cooldown, in flight, usage this minute). Admins only.

    With background health checks on, the latest background results are shown instead of probing.
    """
    deployments = runtime.router.deployments
    checker = runtime.health_checker
    results: Results
    if checker is not None and all(d.id in checker.results for d in deployments):
        results = [(d, checker.results[d.id].error) for d in deployments]
    else:
        results = await _cache(request, runtime).results_for(deployments)
    status = runtime.router.status
    healthy = [{**d.public_info(), **status(d)} for d, err in results if err is None]
    unhealthy = [{**d.public_info(), **status(d), "error": mask_text(err)} for d, err in results if err is not None]
    return {
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": len(healthy),
        "unhealthy_count": len(unhealthy),
        "proxyllm_version": __version__,
    }
