"""A Gemini (Google AI Studio) upstream: generateContent, streamGenerateContent?alt=sse, embeddings, models."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import FakeUpstream

API_KEY = "gemini-fake-key"
GRPC = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
BLOCK_WORD = "BLOCKME"


class FakeGemini(FakeUpstream):
    def __init__(self, models: tuple[str, ...] = ("gemini-fake-flash", "gemini-fake-embed")) -> None:
        super().__init__()
        self.models = models
        self.queries: list[str] = []
        self.app.router.add_post("/v1beta/models/{target}", self.dispatch)
        self.app.router.add_get("/v1beta/models", self.list_models)

    def error_body(self, status: int, message: str) -> Any:
        err: dict[str, Any] = {"code": status, "message": message, "status": GRPC.get(status, "UNKNOWN")}
        if status == 429:
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
        return {"error": err}

    def stream_error_event(self) -> bytes:
        return b'data: {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}\r\n\r\n'

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-goog-api-key") != API_KEY:
            body = self.error_body(400, "API key not valid. Please pass a valid API key.")
            body["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ]
            return web.json_response(body, status=400)
        return None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(request.query_string)
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        model, _, method = request.match_info["target"].partition(":")
        if model not in self.models:
            return web.json_response(self.error_body(404, f"models/{model} is not found"), status=404)
        if method == "generateContent":
            return web.json_response(self._answer(body, model))
        if method == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await self._stream(request, action, body, model)
        if method == "embedContent":
            return web.json_response({"embedding": {"values": [0.25, -0.5, 1.0]}})
        if method == "batchEmbedContents":
            return web.json_response({"embeddings": [{"values": [0.25, -0.5, 1.0]} for _ in body["requests"]]})
        return web.json_response(self.error_body(400, f"unknown method {method}"), status=400)

    def _parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts"):
            parts.append({"text": "Thinking it over.", "thought": True})
        last = body["contents"][-1]
        answered = any("functionResponse" in p for p in last["parts"])
        tools = body.get("tools") or []
        if tools and not answered:
            name = tools[0]["functionDeclarations"][0]["name"]
            parts.append(
                {"functionCall": {"name": name, "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLWdlbQ=="}
            )
        else:
            parts.append({"text": self.reply_text})
        return parts

    @staticmethod
    def _usage(output: int) -> dict[str, int]:
        return {"promptTokenCount": 9, "candidatesTokenCount": output, "totalTokenCount": 9 + output}

    def _blocked(self, body: dict[str, Any], model: str) -> dict[str, Any] | None:
        if BLOCK_WORD not in orjson.dumps(body["contents"]).decode():
            return None
        feedback = {
            "blockReason": "SAFETY",
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}],
        }
        return {"promptFeedback": feedback, "usageMetadata": self._usage(0), "modelVersion": model}

    def _answer(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        blocked = self._blocked(body, model)
        if blocked is not None:
            return blocked
        return {
            "candidates": [
                {"content": {"role": "model", "parts": self._parts(body)}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": self._usage(len(self.reply_text.split(" "))),
            "modelVersion": model,
            "responseId": "gemini-resp-1",
        }

    async def _stream(self, request: web.Request, action: Any, body: dict[str, Any], model: str) -> web.StreamResponse:
        blocked = self._blocked(body, model)
        if blocked is not None:
            events = [blocked]
        else:
            words = self.reply_text.split(" ")
            parts = self._parts(body)
            events = []
            for part in parts:
                if "text" in part and not part.get("thought"):
                    for i, word in enumerate(words):
                        events.append({"text": word if i == 0 else " " + word})
                else:
                    events.append(part)
            events = [
                {
                    "candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}],
                    "usageMetadata": self._usage(i + 1),
                    "modelVersion": model,
                }
                for i, p in enumerate(events)
            ]
            events[-1]["candidates"][0]["finishReason"] = "STOP"
        raw = [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events]
        return await self.stream_events(request, action, raw, "text/event-stream")

    async def list_models(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        return web.json_response({"models": [{"name": f"models/{m}", "displayName": m} for m in self.models]})
