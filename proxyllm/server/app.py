"""The FastAPI application: hot-path ASGI endpoints plus ordinary routes, one lifespan."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import RedirectResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from proxyllm import __version__
from proxyllm.accounts.throttle import AuthThrottle
from proxyllm.config import ProxyConfig, load_config
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Operation
from proxyllm.frontends import azure, llm_endpoints
from proxyllm.frontends.ollama import routes as ollama_routes
from proxyllm.frontends.responses import routes as responses_routes
from proxyllm.frontends.responses.store import ResponseStore
from proxyllm.observability import configure_logging, json_logs_wanted
from proxyllm.observability.access import RequestLog
from proxyllm.ops.allowlist import IPAllowlistMiddleware
from proxyllm.server import errors, openapi
from proxyllm.server.bodylimit import BodyLimitMiddleware
from proxyllm.server.middleware import RequestIdMiddleware
from proxyllm.server.routes import audit, customers, health, keys, models, models_admin, spend, stripe, teams, users
from proxyllm.server.routes.billing_portal import router as billing_portal_router
from proxyllm.server.routes.budgets import router as budgets_router
from proxyllm.server.routes.metrics import router as metrics_router
from proxyllm.server.routes.model_catalog import router as model_catalog_router
from proxyllm.server.routes.pricing import router as pricing_router
from proxyllm.server.routes.routes_list import router as routes_list_router
from proxyllm.server.runtime import Runtime
from proxyllm.ui.routes import MAX_LOGIN_BODY
from proxyllm.ui.routes import router as ui_router

LLM_PATHS = {
    Operation.CHAT: ("/v1/chat/completions", "/chat/completions"),
    Operation.COMPLETION: ("/v1/completions", "/completions"),
    Operation.EMBEDDING: ("/v1/embeddings", "/embeddings"),
}


class ProxyApp(FastAPI):
    """FastAPI, except that the model endpoints are dispatched before its middleware and routing.

    They are raw ASGI endpoints already; the stack in front of them was measured at ~10% of a request's
    CPU. Only the IP allowlist (which also scopes per-key address checks) wraps them.
    """

    hot: JSONObject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.hot.get(scope["path"])
            if endpoint is None and scope["path"].startswith(azure.PREFIX):  # Azure's path form
                endpoint = self.hot.get(azure.route_of(scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = ProxyApp(title="proxyllm", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    gs = runtime.config.general_settings
    runtime.auth.throttle = AuthThrottle(
        limit=gs.auth_failure_limit, window=gs.auth_failure_window, state=runtime.shared_state
    )
    app.state.response_store = store = ResponseStore(
        runtime.db, runtime.config.general_settings.responses_retention_days
    )
    endpoints: JSONObject = llm_endpoints(runtime, LLM_PATHS, store)
    for path, endpoint in endpoints.items():  # still routed, for the 405 on other methods
        app.router.routes.append(Route(path, endpoint, methods=["POST"], include_in_schema=False))
    app.hot = {  # RequestLog: a log line for responses the gateway does not log (observability/access.py)
        path: RequestLog(IPAllowlistMiddleware(endpoint, allowed=runtime.ops.allowed, resolver=runtime.ops.resolver))
        for path, endpoint in endpoints.items()
    }
    app.include_router(health.router)
    app.include_router(metrics_router)
    for module in (models, models_admin, keys, users, teams, spend, stripe, customers, audit):
        app.include_router(module.router)
    app.include_router(responses_routes.router)
    app.include_router(ollama_routes.router)  # Ollama's model endpoints (/api/tags, /api/show, ...)
    app.include_router(budgets_router)  # shared budgets (/budget/*); end users are in customers
    app.include_router(model_catalog_router)  # /model_group/info, /v2/model/info
    app.include_router(routes_list_router)  # /routes
    app.include_router(pricing_router)  # customer prices: rate cards, markups
    app.include_router(billing_portal_router)  # billing portal, auto-recharge, grants
    app.include_router(ui_router)
    app.add_route("/", lambda _: RedirectResponse("/ui"), methods=["GET", "HEAD"], include_in_schema=False)
    errors.install(app)
    openapi.install(app)
    app.add_middleware(
        BodyLimitMiddleware,
        credentialed_limit=int(gs.max_admin_request_size_kb * 1024),
        anonymous_limit=int(gs.max_unauthenticated_request_size_kb * 1024),
        path_limits={"/ui/login": MAX_LOGIN_BODY, "/ui/logout": MAX_LOGIN_BODY},
    )
    app.add_middleware(RequestIdMiddleware, skip_paths=frozenset(endpoints))
    # Outermost: a refused address gets its 403 before any other work.
    app.add_middleware(IPAllowlistMiddleware, allowed=runtime.ops.allowed, resolver=runtime.ops.resolver)
    app.add_middleware(RequestLog)  # outside even the allowlist: its 403s get a log line too
    return app


def runtime_from_env() -> Runtime:
    """The runtime described by the environment (``PROXYLLM_CONFIG``), as the CLI sets it up."""
    path = os.environ.get("PROXYLLM_CONFIG") or os.environ.get("CONFIG_FILE_PATH")
    if path:
        return Runtime(load_config(path))
    return Runtime(ProxyConfig(), discover_ollama=True)


def app_from_env() -> FastAPI:
    """uvicorn factory for multi-worker runs."""
    runtime = runtime_from_env()
    configure_logging(json_logs=json_logs_wanted(runtime.config.litellm_settings.json_logs))
    return create_app(runtime)
