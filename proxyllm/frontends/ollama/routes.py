"""Ollama's model endpoints: ``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/version`` and model management.

Listing and ``show`` serve the models the calling key may use (the same list as ``/v1/models``),
whatever their provider. ``show`` asks an Ollama deployment for the model's real details, and
describes any other model from its config. ``ps`` lists the models loaded on the Ollama upstreams,
under the proxy's names. Model management (``pull``, ``delete``, ``copy``) is for the master key
only and goes to the Ollama deployment named by the ``x-proxyllm-deployment`` header (its model id);
``push`` and ``create`` are refused for every key (see docs/frontends.md). Every error is Ollama's
``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import wraps

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from proxyllm.accounts.auth import key_from_headers
from proxyllm.accounts.hooks import visible
from proxyllm.core.context import Principal
from proxyllm.core.deployment import Deployment
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.routing.groups import ModelGroup
from proxyllm.core.upstream_http import bearer_headers, client_timeout
from proxyllm.frontends.base import Services
from proxyllm.frontends.ollama.request import load_object, model_of

router = APIRouter(tags=["ollama"], include_in_schema=False)
OLLAMA_VERSION = "0.13.0"  # the Ollama API version these endpoints follow
MODIFIED = "2023-11-14T22:13:20Z"  # model groups have no modification time; a fixed one keeps answers stable
OLLAMA_PROVIDERS = frozenset({"ollama", "ollama_chat"})
DEPLOYMENT_HEADER = b"x-proxyllm-deployment"
SHOWN = ("modified_at", "details", "model_info", "capabilities", "parameters", "template", "license")
MAX_MANAGEMENT_BODY = 64 * 1024

Handler = Callable[[Request], Awaitable[Response]]


def ollama_json(data: JSONValue, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def ollama_errors(handler: Handler) -> Handler:
    """Answers a ProxyError in Ollama's shape, with its status and headers (e.g. retry-after)."""

    @wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ProxyError as err:
            return ollama_json({"error": err.message}, err.status, err.response_headers())

    return run


def runtime_of(request: Request) -> Services:
    runtime: Services = request.app.state.runtime
    return runtime


async def caller(request: Request) -> Principal:
    return await runtime_of(request).auth.authenticate(key_from_headers(request.scope["headers"]))


def is_ollama(dep: Deployment) -> bool:
    return dep.provider.name in OLLAMA_PROVIDERS


def not_found(model: str) -> ProxyError:
    return ProxyError(ErrorKind.NOT_FOUND, f"model '{model}' not found", param="model", code="model_not_found")


def visible_group(runtime: Services, who: Principal, model: str) -> ModelGroup:
    group = runtime.router.find(model)
    if group is None or not visible(runtime.router, who, model):
        raise not_found(model)
    return group


def details(group: ModelGroup | None) -> JSONObject:
    family = group.deployments[0].provider.name if group is not None and group.deployments else ""
    return {
        "parent_model": "",
        "format": "",
        "family": family,
        "families": [family] if family else None,
        "parameter_size": "",
        "quantization_level": "",
    }


def listed(name: str, group: ModelGroup | None) -> JSONObject:
    return {
        "name": name,
        "model": name,
        "modified_at": MODIFIED,
        "size": 0,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": details(group),
    }


@router.get("/api/version")
async def version() -> Response:
    return ollama_json({"version": OLLAMA_VERSION})


@router.get("/api/tags")
@ollama_errors
async def tags(request: Request) -> Response:
    runtime, who = runtime_of(request), await caller(request)
    names = [n for n in runtime.router.model_names() if visible(runtime.router, who, n)]
    return ollama_json({"models": [listed(n, runtime.router.find(n)) for n in names]})


def capabilities(group: ModelGroup) -> list[str]:
    info = group.deployments[0].model_info if group.deployments else {}
    if info.get("mode") == "embedding":
        return ["embedding"]
    found = ["completion", "tools"]
    if info.get("supports_vision"):
        found.append("vision")
    if info.get("supports_reasoning"):
        found.append("thinking")
    return found


async def upstream_show(dep: Deployment) -> JSONObject | None:
    """The Ollama upstream's own ``show`` of the model, or None when it cannot say."""
    try:
        raw = await dep.provider.http.request(
            "POST",
            dep.api_base + "/api/show",
            body=orjson.dumps({"model": dep.upstream_model}),
            headers=bearer_headers(dep.api_key, dep.extra_headers),
            timeout=client_timeout(10, min(5.0, dep.connect_timeout)),
            proxy=dep.proxy_url,
        )
        data = orjson.loads(raw)
    except (ProxyError, orjson.JSONDecodeError):
        return None
    return {k: data[k] for k in SHOWN if k in data} if isinstance(data, dict) else None


@router.post("/api/show")
@ollama_errors
async def show(request: Request) -> Response:
    runtime, who = runtime_of(request), await caller(request)
    model = model_of(load_object(await request.body()))
    group = visible_group(runtime, who, model)
    ollama = next((d for d in group.deployments if is_ollama(d)), None)
    shown = await upstream_show(ollama) if ollama is not None else None
    if shown is None:
        info = group.deployments[0].model_info if group.deployments else {}
        model_info: JSONObject = {"general.architecture": details(group)["family"]}
        if isinstance(info.get("max_input_tokens"), int):
            model_info["general.context_length"] = info["max_input_tokens"]
        shown = {
            "modified_at": MODIFIED,
            "details": details(group),
            "model_info": model_info,
            "capabilities": capabilities(group),
            "parameters": "",
            "template": "",
        }
    shown.setdefault("model_info", {})
    return ollama_json(shown)


async def upstream_ps(dep: Deployment) -> list[JSONObject]:
    try:
        raw = await dep.provider.http.request(
            "GET",
            dep.api_base + "/api/ps",
            headers=bearer_headers(dep.api_key, dep.extra_headers),
            timeout=client_timeout(5, min(3.0, dep.connect_timeout)),
            proxy=dep.proxy_url,
        )
        data = orjson.loads(raw)
    except (ProxyError, orjson.JSONDecodeError):
        return []
    models = data.get("models") if isinstance(data, dict) else None
    return [m for m in models or [] if isinstance(m, dict)]


def same_model(a: str, b: str) -> bool:
    return a == b or a.removesuffix(":latest") == b.removesuffix(":latest")


@router.get("/api/ps")
@ollama_errors
async def ps(request: Request) -> Response:
    """The models loaded on the Ollama upstreams, under the proxy's names (hosted models have no load state)."""
    runtime, who = runtime_of(request), await caller(request)
    served: list[tuple[str, Deployment]] = []
    for name in runtime.router.model_names():
        group = runtime.router.find(name)
        if group is not None and visible(runtime.router, who, name):
            served += [(name, d) for d in group.deployments if is_ollama(d)]
    bases = {(d.api_base, d.api_key): d for _, d in served}
    loaded = dict(zip(bases, await asyncio.gather(*(upstream_ps(d) for d in bases.values())), strict=True))
    models = []
    for name, dep in served:
        for entry in loaded[(dep.api_base, dep.api_key)]:
            upstream = entry.get("model") or entry.get("name")
            if isinstance(upstream, str) and same_model(upstream, dep.upstream_model):
                models.append({**entry, "name": name, "model": name})
                break
    return ollama_json({"models": models})


# -- model management -----------------------------------------------------------------------


async def admin_target(request: Request) -> Deployment:
    """The master key's named Ollama deployment; everyone else is refused."""
    who = await caller(request)
    if not who.is_admin:
        raise ProxyError(
            ErrorKind.PERMISSION,
            "model management is for the proxy's master key; this key may only use the models it is given",
            code="not_admin",
        )
    wanted = request.headers.get(DEPLOYMENT_HEADER.decode())
    ollama = [d for d in runtime_of(request).router.deployments if is_ollama(d)]
    if not wanted:
        ids = ", ".join(sorted({d.id for d in ollama})) or "none is configured"
        raise invalid_request(
            f"name the Ollama deployment to manage in the 'x-proxyllm-deployment' header (its model id: {ids})"
        )
    for dep in ollama:
        if dep.id == wanted:
            return dep
    raise ProxyError(ErrorKind.NOT_FOUND, f"no Ollama deployment has the model id '{wanted}'")


async def management_body(request: Request) -> JSONObject:
    raw = await request.body()
    if len(raw) > MAX_MANAGEMENT_BODY:
        raise ProxyError(ErrorKind.PAYLOAD_TOO_LARGE, "the request body is too large")
    return load_object(raw)


async def forward(dep: Deployment, method: str, path: str, body: JSONObject) -> Response:
    raw = await dep.provider.http.request(
        method,
        dep.api_base + path,
        body=orjson.dumps(body),
        headers=bearer_headers(dep.api_key, dep.extra_headers),
        timeout=client_timeout(60, dep.connect_timeout),
        proxy=dep.proxy_url,
    )
    return Response(raw, media_type="application/json")


@router.post("/api/pull")
@ollama_errors
async def pull(request: Request) -> Response:
    dep = await admin_target(request)
    body = await management_body(request)
    model_of(body)
    body["insecure"] = False  # never from a registry without TLS
    if body.get("stream") is False:
        timeout = client_timeout(None, dep.connect_timeout)
        raw = await dep.provider.http.request(
            "POST",
            dep.api_base + "/api/pull",
            body=orjson.dumps(body),
            headers=bearer_headers(dep.api_key, dep.extra_headers),
            timeout=timeout,
            proxy=dep.proxy_url,
        )
        return Response(raw, media_type="application/json")
    return await progress_stream(dep, body)


async def progress_stream(dep: Deployment, body: JSONObject) -> Response:
    """A pull's progress lines, relayed as they come (the pull may take many minutes)."""
    opened = dep.provider.http.stream(
        dep.api_base + "/api/pull",
        body=orjson.dumps(body),
        headers=bearer_headers(dep.api_key, dep.extra_headers),
        timeout=client_timeout(None, dep.connect_timeout),
        proxy=dep.proxy_url,
    )
    resp = await opened.__aenter__()  # errors before the first byte are still a plain error answer

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        finally:
            await opened.__aexit__(None, None, None)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.delete("/api/delete")
@ollama_errors
async def delete(request: Request) -> Response:
    dep = await admin_target(request)
    body = await management_body(request)
    model_of(body)
    return await forward(dep, "DELETE", "/api/delete", body)


@router.post("/api/copy")
@ollama_errors
async def copy(request: Request) -> Response:
    dep = await admin_target(request)
    body = await management_body(request)
    for name in ("source", "destination"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise invalid_request(f"missing required field '{name}'", param=name)
    return await forward(dep, "POST", "/api/copy", body)


@router.post("/api/push")
@router.post("/api/create")
@ollama_errors
async def refused(request: Request) -> Response:
    await caller(request)  # a bad key is still told so first
    raise ProxyError(
        ErrorKind.PERMISSION,
        "pushing and creating models through the proxy is not allowed: "
        "do it on the Ollama host itself (see docs/frontends.md)",
        code="not_allowed",
    )
