"""``GET /metrics``: Prometheus text format. Open by default, as LiteLLM's is; with
``litellm_settings.require_auth_for_metrics_endpoint: true`` it wants a valid key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from proxyllm.accounts.auth import key_from_headers
from proxyllm.server.deps import RuntimeDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    if runtime.config.litellm_settings.require_auth_for_metrics_endpoint:
        await runtime.auth.authenticate(key_from_headers(request.scope["headers"]))
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
