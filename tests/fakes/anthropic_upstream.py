"""An Anthropic upstream: /v1/messages (plain, streamed, tools, thinking), count_tokens, models."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import FakeUpstream

API_KEY = "sk-ant-fake-key"
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class FakeAnthropic(FakeUpstream):
    def __init__(self, models: tuple[str, ...] = ("claude-fake-4", "claude-fake-haiku")) -> None:
        super().__init__()
        self.models = models
        self.raw_stream: list[bytes] | None = None  # streamed as they are instead of the built events
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        self.app.router.add_get("/v1/models", self.list_models)

    def reset(self) -> None:
        super().reset()
        self.raw_stream = None

    def error_body(self, status: int, message: str) -> Any:
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}

    def stream_error_event(self) -> bytes:
        return sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != API_KEY:
            return web.json_response(self.error_body(401, "invalid x-api-key"), status=401)
        if not request.headers.get("anthropic-version"):
            return web.json_response(self.error_body(400, "anthropic-version header is required"), status=400)
        return None

    def _content(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        thinking = (body.get("thinking") or {}).get("type")
        if thinking in ("enabled", "adaptive"):
            blocks.append({"type": "thinking", "thinking": "Let me think.", "signature": "sig-fake-123"})
        if thinking == "adaptive":
            blocks.append({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"})
        last = body["messages"][-1]
        answered = isinstance(last["content"], list) and any(b.get("type") == "tool_result" for b in last["content"])
        tools = body.get("tools") or []
        if ((body.get("output_config") or {}).get("format") or {}).get("type") == "json_schema":
            blocks.append({"type": "text", "text": '{"answer":42}'})
        elif tools and not answered:
            name = tools[0]["name"]
            tool_input = {"answer": 42} if name == "json_tool_call" else {"city": "Paris"}
            blocks.append({"type": "tool_use", "id": "toolu_fake_1", "name": name, "input": tool_input})
        else:
            blocks.append({"type": "text", "text": self.reply_text})
        return blocks

    def _usage(self, body: dict[str, Any], output: int) -> dict[str, int]:
        cached = b"cache_control" in orjson.dumps(body)
        return {
            "input_tokens": 11,
            "output_tokens": output,
            "cache_creation_input_tokens": 2 if cached else 0,
            "cache_read_input_tokens": 4 if cached else 0,
        }

    async def messages(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if body.get("model") not in self.models:
            return web.json_response(self.error_body(404, f"model: {body.get('model')}"), status=404)
        content = self._content(body)
        stop = "tool_use" if content[-1]["type"] == "tool_use" else "end_turn"
        words = self.reply_text.split(" ")
        message = {
            "id": "msg_fake_01",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self._usage(body, len(words)),
        }
        if not body.get("stream"):
            return web.json_response(message)
        if self.raw_stream is not None:
            return await self.stream_events(request, action, self.raw_stream, "text/event-stream")
        start_usage = {**message["usage"], "output_tokens": 1}
        events = [
            sse(
                "message_start", {"type": "message_start", "message": {**message, "content": [], "usage": start_usage}}
            ),
            sse("ping", {"type": "ping"}),
        ]
        for index, block in enumerate(content):
            events.extend(self._block_events(index, block))
        delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
        events.append(sse("message_delta", {**delta, "usage": {"output_tokens": len(words)}}))
        events.append(sse("message_stop", {"type": "message_stop"}))
        return await self.stream_events(request, action, events, "text/event-stream")

    @staticmethod
    def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
        kind = block["type"]
        out = []
        if kind == "text":
            out.append(
                sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                )
            )
            for i, word in enumerate(block["text"].split(" ")):
                delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
                out.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        elif kind == "tool_use":
            start = {**block, "input": {}}
            out.append(
                sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            )
            raw = orjson.dumps(block["input"]).decode()
            for piece in (raw[:5], raw[5:]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                out.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            out.append(
                sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            )
            for delta in (
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ):
                out.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        else:  # redacted_thinking and other whole blocks
            out.append(
                sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
            )
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        return out

    async def count_tokens(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        return web.json_response({"input_tokens": 17 + len(body.get("messages") or [])})

    async def list_models(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"} for m in self.models
        ]
        return web.json_response({"data": data, "has_more": False, "first_id": None, "last_id": None})
