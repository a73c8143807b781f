"""An OpenAI-compatible upstream: chat (plain, streamed, tools), completions, embeddings, models, and
the Responses API (plain and streamed, with a function call when the last input is a user message)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import FakeUpstream, Recorded


class FakeOpenAI(FakeUpstream):
    def __init__(self, models: tuple[str, ...] = ("gpt-fake", "gpt-fake-big", "embed-fake")) -> None:
        super().__init__()
        self.models = models
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_post("/v1/completions", self.completions)
        self.app.router.add_post("/v1/embeddings", self.embeddings)
        self.app.router.add_get("/v1/models", self.list_models)
        self.app.router.add_post("/v1/responses", self.responses)
        self.app.router.add_post("/v1/images/generations", self.images)
        self.app.router.add_post("/v1/moderations", self.moderations)
        self.app.router.add_post("/v1/audio/speech", self.speech)
        self.app.router.add_post("/v1/audio/transcriptions", self.transcriptions)
        self.app.router.add_post("/v1/rerank", self.rerank)
        self.app.router.add_post("/v2/rerank", self.rerank)  # Cohere's path
        self.transcript_seconds: float | None = 2.5  # reported as usage.seconds; None: not reported

    @property
    def api_base(self) -> str:
        return self.url + "/v1"

    def stream_error_event(self) -> bytes:
        return b'data: {"error": {"message": "the model crashed", "type": "server_error"}}\n\n'

    @staticmethod
    def usage(body: dict[str, Any], completion: int) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) or 1
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        tools = body.get("tools")
        wants_tool = bool(tools) and body["messages"][-1].get("role") == "user"
        words = self.reply_text.split(" ")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit < len(words):  # like a real model: one word a token, cut at the limit
            words = words[:limit]
        choices = body.get("n") or 1
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": " ".join(words)}
            finish = "stop"
            if wants_tool:
                fn = tools[0]["function"]["name"]
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": fn, "arguments": '{"city": "Paris"}'}}
                    ],
                }
                finish = "tool_calls"
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": i, "message": message, "finish_reason": finish} for i in range(choices)],
                    "usage": self.usage(body, len(words) * choices),
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = []
        chunk_base = {**base, "object": "chat.completion.chunk"}
        if include_usage:
            chunk_base["usage"] = None
        deltas: list[dict[str, Any]] = [{"content": word if i == 0 else " " + word} for i, word in enumerate(words)]
        deltas[0]["role"] = "assistant"
        if wants_tool:  # OpenAI streams a call as its id and name, then the arguments in pieces
            call = {"index": 0, "id": "call_1", "type": "function"}
            deltas = [
                {"role": "assistant", "tool_calls": [{**call, "function": {"name": tools[0]["function"]["name"]}}]},
                {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
                {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
            ]
        for delta in deltas:
            events.append({**chunk_base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        finish = "tool_calls" if wants_tool else "stop"
        events.append({**chunk_base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if include_usage:
            events.append({**chunk_base, "choices": [], "usage": self.usage(body, len(words) * choices)})
        raw = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
        return await self.stream_events(request, action, raw, "text/event-stream")

    async def completions(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        return web.json_response(
            {
                "id": "cmpl-fake",
                "object": "text_completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "text": " world", "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
            }
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response(
            {
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i, _ in enumerate(inputs)
                ],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
            }
        )

    async def list_models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def responses(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        last = items[-1] if items else {}
        wants_tool = bool(body.get("tools")) and last.get("type", "message") == "message" and last.get("role") == "user"
        words = self.reply_text.split(" ")
        prompt = sum(len(json_text(item).split()) for item in items) or 1
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(words),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + len(words),
        }
        base = {
            "id": f"resp_fake{uuid.uuid4().hex}",
            "object": "response",
            "created_at": int(time.time()),
            "model": body["model"],
            "status": "in_progress",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "store": body.get("store", True),
            "text": body.get("text") or {"format": {"type": "text"}},
            "usage": None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "metadata": body.get("metadata") or {},
        }
        if wants_tool:
            item: dict[str, Any] = {
                "type": "function_call",
                "id": "fc_fake",
                "call_id": "call_1",
                "name": body["tools"][0]["name"],
                "arguments": '{"city": "Paris"}',
                "status": "completed",
            }
        else:
            part = {"type": "output_text", "text": self.reply_text, "annotations": []}
            item = {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant", "content": [part]}
        final = {**base, "status": "completed", "output": [item], "usage": usage}
        if not body.get("stream"):
            return web.json_response(final)
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": base},
            {"type": "response.in_progress", "response": base},
        ]
        if wants_tool:
            events.append({"type": "response.output_item.added", "output_index": 0, "item": {**item, "arguments": ""}})
            for piece in ('{"city": ', '"Paris"}'):
                events.append(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": "fc_fake",
                        "output_index": 0,
                        "delta": piece,
                    }
                )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": "fc_fake",
                    "output_index": 0,
                    "arguments": item["arguments"],
                }
            )
        else:
            ids = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
            events.append({"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}})
            events.append({"type": "response.content_part.added", **ids, "part": {**part, "text": ""}})
            for i, word in enumerate(words):
                events.append({"type": "response.output_text.delta", **ids, "delta": word if i == 0 else " " + word})
            events.append({"type": "response.output_text.done", **ids, "text": self.reply_text})
            events.append({"type": "response.content_part.done", **ids, "part": part})
        events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
        events.append({"type": "response.completed", "response": final})
        raw = [
            b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps({**e, "sequence_number": n}) + b"\n\n"
            for n, e in enumerate(events)
        ]
        return await self.stream_events(request, action, raw, "text/event-stream")

    async def images(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        item = {"b64_json": "aW1hZ2U="} if body.get("response_format") == "b64_json" else {"url": "https://img/1.png"}
        return web.json_response({"created": int(time.time()), "data": [item] * (body.get("n") or 1)})

    async def moderations(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        result = {"flagged": False, "categories": {"violence": False}, "category_scores": {"violence": 0.01}}
        return web.json_response({"id": "modr-fake", "model": body["model"], "results": [result] * len(inputs)})

    async def speech(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        return web.Response(body=b"ID3fake-audio:" + body["input"].encode(), content_type="audio/mpeg")

    async def transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        size = len(upload.file.read()) if isinstance(upload, web.FileField) else -1
        self.requests.append(Recorded(request.path, {**fields, "file_bytes": size}, dict(request.headers)))
        action = self.plan.pop(0) if self.plan else self.unscripted()
        if action.status:
            return self.error_response(action)
        if fields.get("response_format") == "text":
            return web.Response(text="hello from the audio", content_type="text/plain")
        data: dict[str, Any] = {"text": "hello from the audio"}
        if self.transcript_seconds is not None:
            data["usage"] = {"type": "duration", "seconds": self.transcript_seconds}
        return web.json_response(data)

    async def rerank(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        docs = body["documents"]
        ranked = sorted(range(len(docs)), key=lambda i: -len(str(docs[i])))[: body.get("top_n") or len(docs)]
        results = [{"index": i, "relevance_score": round(1 / (n + 1), 3)} for n, i in enumerate(ranked)]
        meta = {"billed_units": {"search_units": 1}}
        return web.json_response({"id": "rerank-fake", "results": results, "meta": meta})


def json_text(item: Any) -> str:
    return orjson.dumps(item).decode()
