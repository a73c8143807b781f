"""The FastAPI application: hot-path ASGI endpoints plus ordinary routes, one lifespan."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route

from proxyllm import __version__
from proxyllm.config import ProxyConfig, load_config
from proxyllm.core.types import Operation
from proxyllm.observability import configure_logging, json_logs_wanted
from proxyllm.ops.allowlist import IPAllowlistMiddleware
from proxyllm.server import errors
from proxyllm.server.asgi import LLMEndpoint
from proxyllm.server.messages import CountTokensEndpoint, MessagesEndpoint
from proxyllm.server.middleware import RequestIdMiddleware
from proxyllm.server.routes import audit, customers, health, keys, models, models_admin, spend, stripe, teams, users
from proxyllm.server.routes.metrics import router as metrics_router
from proxyllm.server.runtime import Runtime
from proxyllm.ui.routes import router as ui_router

LLM_PATHS = {
    Operation.CHAT: ("/v1/chat/completions", "/chat/completions"),
    Operation.COMPLETION: ("/v1/completions", "/completions"),
    Operation.EMBEDDING: ("/v1/embeddings", "/embeddings"),
}


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="proxyllm", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    for operation, paths in LLM_PATHS.items():
        endpoint = LLMEndpoint(runtime, operation)
        for path in paths:
            app.router.routes.append(Route(path, endpoint, methods=["POST"], include_in_schema=False))
    messages, count = MessagesEndpoint(runtime), CountTokensEndpoint(runtime)
    app.router.routes.append(Route("/v1/messages", messages, methods=["POST"], include_in_schema=False))
    app.router.routes.append(Route("/v1/messages/count_tokens", count, methods=["POST"], include_in_schema=False))
    app.include_router(health.router)
    app.include_router(metrics_router)
    for module in (models, models_admin, keys, users, teams, spend, stripe, customers, audit):
        app.include_router(module.router)
    app.include_router(ui_router)
    errors.install(app)
    hot_paths = frozenset(path for paths in LLM_PATHS.values() for path in paths)
    app.add_middleware(RequestIdMiddleware, skip_paths=hot_paths)
    # Outermost: a refused address gets its 403 before any other work.
    app.add_middleware(IPAllowlistMiddleware, allowed=runtime.ops.allowed, resolver=runtime.ops.resolver)
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
