"""An Azure OpenAI upstream: deployment URLs with ``api-version``, the ``api-key`` header, content filtering.

The bodies are OpenAI's, so the OpenAI fake's handlers answer once Azure's own checks pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import Action, Recorded
from tests.fakes.openai_upstream import FakeOpenAI

API_KEY = "azure-fake-key"
FILTER_WORD = "FORBIDDEN"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_FILTER_ERROR = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
        "Please modify your prompt and retry.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "self_harm": {"filtered": False, "severity": "safe"},
                "sexual": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "high"},
            },
        },
    }
}


class FakeAzure(FakeOpenAI):
    def __init__(self, deployments: tuple[str, ...] = ("gpt-4o-prod", "embed-prod")) -> None:
        super().__init__(models=deployments)
        self.deployments = deployments
        self.queries: list[dict[str, str]] = []
        base = "/openai/deployments/{deployment}"
        self.app.router.add_post(base + "/chat/completions", self._checked(self.chat))
        self.app.router.add_post(base + "/embeddings", self._checked(self.embeddings))
        self.app.router.add_post(base + "/completions", self._checked(self.completions))
        self.app.router.add_post(base + "/images/generations", self._checked(self.images))
        self.app.router.add_post("/openai/v1/chat/completions", self._checked(self.chat, v1=True))
        self.app.router.add_get("/openai/models", self._models)

    def _checked(self, handler: Handler, *, v1: bool = False) -> Handler:
        async def check(request: web.Request) -> web.StreamResponse:
            self.queries.append(dict(request.query))
            if request.headers.get("api-key") != API_KEY:
                body = {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}
                return web.json_response(body, status=401)
            if not v1 and not request.query.get("api-version"):
                body = {"error": {"code": "404", "message": "Resource not found"}}
                return web.json_response(body, status=404)
            deployment = request.match_info.get("deployment")
            if deployment is not None and deployment not in self.deployments:
                body = {"error": {"code": "DeploymentNotFound", "message": f"deployment {deployment} not found"}}
                return web.json_response(body, status=404)
            raw = await request.read()
            if FILTER_WORD.encode() in raw:
                self.requests.append(self._record(request, raw))
                return web.json_response(CONTENT_FILTER_ERROR, status=400)
            return await handler(request)

        return check

    @staticmethod
    def _record(request: web.Request, raw: bytes) -> Recorded:
        return Recorded(request.path, orjson.loads(raw), dict(request.headers))

    async def take(self, request: web.Request) -> tuple[Action, dict[str, Any]]:
        # The body was read once for the content filter; aiohttp keeps it, but can_read_body is now False.
        raw = await request.read() if request.body_exists else b""
        body = orjson.loads(raw) if raw else {}
        self.requests.append(Recorded(request.path, body, dict(request.headers)))
        action = self.plan.pop(0) if self.plan else Action()
        if action.delay:
            await asyncio.sleep(action.delay)
        return action, body

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("api-key") != API_KEY:
            return web.json_response({"error": {"code": "401", "message": "Access denied"}}, status=401)
        return web.json_response({"data": [{"id": "gpt-4o", "object": "model"}], "object": "list"})
