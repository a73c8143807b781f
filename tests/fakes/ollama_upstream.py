"""An Ollama upstream: /api/chat, /api/generate, /api/embed, /api/tags, NDJSON streaming."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.base import FakeUpstream, Recorded
from tests.fakes.schema_sample import sample

STAMP = "2026-11-24T12:00:00Z"


class FakeOllama(FakeUpstream):
    def __init__(self, models: tuple[str, ...] = ("llama3:latest", "qwen3:8b", "nomic-embed-text:latest")):
        super().__init__()
        self.models = models
        self.durations: dict[str, int] = {}  # overrides of the final answer's durations (nanoseconds)
        self.app.router.add_post("/api/chat", self.chat)
        self.app.router.add_post("/api/generate", self.generate)
        self.app.router.add_post("/api/embed", self.embed)
        self.app.router.add_get("/api/tags", self.tags)
        self.app.router.add_post("/api/embeddings", self.embeddings)
        self.app.router.add_post("/api/show", self.show)
        self.app.router.add_get("/api/ps", self.ps)
        self.app.router.add_post("/api/pull", self.pull)
        self.app.router.add_delete("/api/delete", self.delete)
        self.app.router.add_post("/api/copy", self.copy)

    def reset(self) -> None:
        super().reset()
        self.durations.clear()

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def stream_error_event(self) -> bytes:
        return b'{"error":"an error was encountered while running the model"}\n'

    def _formatted(self, body: dict[str, Any]) -> str | None:
        """With ``format``, the answer is JSON: matching the schema, or an object for "json"."""
        fmt = body.get("format")
        if isinstance(fmt, dict):
            return orjson.dumps(sample(fmt)).decode()
        if fmt == "json":
            return orjson.dumps({"reply": self.reply_text}).decode()
        return None

    def _known(self, name: str) -> bool:
        return name in self.models or f"{name}:latest" in self.models

    def _final(self, body: dict[str, Any], count: int) -> dict[str, Any]:
        reason = "length" if (body.get("options") or {}).get("num_predict") == 1 else "stop"
        return {
            "model": body["model"],
            "created_at": STAMP,
            "done": True,
            "done_reason": reason,
            "total_duration": 1000,
            "prompt_eval_count": 7,
            "eval_count": count,
            "eval_duration": 500,
            **self.durations,
        }

    async def chat(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        if not self._known(body["model"]):
            return web.json_response({"error": f'model "{body["model"]}" not found, try pulling it first'}, status=404)
        formatted = self._formatted(body)
        text = formatted if formatted is not None else self.reply_text
        words = text.split(" ")
        wants_tool = bool(body.get("tools")) and body["messages"][-1].get("role") == "user" and formatted is None
        if not body.get("stream", True):
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            if wants_tool:
                msg = {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"function": {"name": body["tools"][0]["function"]["name"], "arguments": {"city": "Paris"}}}
                    ],
                }
            return web.json_response(
                {"model": body["model"], "created_at": STAMP, "message": msg, **self._final(body, len(words))}
            )
        lines = []
        if wants_tool:
            lines.append(
                {
                    "model": body["model"],
                    "created_at": STAMP,
                    "done": False,
                    "message": {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {"function": {"name": body["tools"][0]["function"]["name"], "arguments": {"city": "Paris"}}}
                        ],
                    },
                }
            )
        else:
            for i, word in enumerate(words):
                text = word if i == 0 else " " + word
                lines.append(
                    {
                        "model": body["model"],
                        "created_at": STAMP,
                        "done": False,
                        "message": {"role": "assistant", "content": text},
                    }
                )
        lines.append({**self._final(body, len(words)), "message": {"role": "assistant", "content": ""}})
        raw = [orjson.dumps(line) + b"\n" for line in lines]
        return await self.stream_events(request, action, raw, "application/x-ndjson")

    async def generate(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        formatted = self._formatted(body)
        text = formatted if formatted is not None else self.reply_text
        words = text.split(" ")
        if not body.get("stream", True):
            return web.json_response(
                {
                    "model": body["model"],
                    "created_at": STAMP,
                    "response": text,
                    **self._final(body, len(words)),
                }
            )
        lines = [
            {"model": body["model"], "created_at": STAMP, "done": False, "response": word if i == 0 else " " + word}
            for i, word in enumerate(words)
        ]
        lines.append({**self._final(body, len(words)), "response": ""})
        raw = [orjson.dumps(line) + b"\n" for line in lines]
        return await self.stream_events(request, action, raw, "application/x-ndjson")

    async def embed(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response(
            {
                "model": body["model"],
                "embeddings": [[0.5, -0.25, 0.125] for _ in inputs],
                "prompt_eval_count": 3 * len(inputs),
            }
        )

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": m, "model": m, "size": 1} for m in self.models]})

    async def embeddings(self, request: web.Request) -> web.Response:
        action, _ = await self.take(request)
        if action.status:
            return self.error_response(action)
        return web.json_response({"embedding": [0.5, -0.25, 0.125]})

    async def show(self, request: web.Request) -> web.Response:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        if not self._known(body.get("model", "")):
            return web.json_response({"error": f"model '{body.get('model')}' not found"}, status=404)
        return web.json_response(
            {
                "modelfile": "FROM /root/.ollama/models/blobs/sha256-secret-path",
                "parameters": "stop <|eot_id|>",
                "template": "{{ .Prompt }}",
                "details": {"format": "gguf", "family": "llama", "parameter_size": "8B", "quantization_level": "Q4_0"},
                "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
                "capabilities": ["completion", "tools"],
                "modified_at": STAMP,
            }
        )

    async def ps(self, request: web.Request) -> web.Response:
        self.requests.append(Recorded(request.path, {}, dict(request.headers)))
        loaded = self.models[0]
        return web.json_response(
            {"models": [{"name": loaded, "model": loaded, "size": 5, "size_vram": 5, "expires_at": STAMP}]}
        )

    async def pull(self, request: web.Request) -> web.StreamResponse:
        action, body = await self.take(request)
        if action.status:
            return self.error_response(action)
        if body.get("stream") is False:
            return web.json_response({"status": "success"})
        steps = ("pulling manifest", "verifying sha256 digest", "success")
        lines = [orjson.dumps({"status": step}) + b"\n" for step in steps]
        return await self.stream_events(request, action, lines, "application/x-ndjson")

    async def delete(self, request: web.Request) -> web.Response:
        action, _ = await self.take(request)
        if action.status:
            return self.error_response(action)
        return web.Response(status=200)

    async def copy(self, request: web.Request) -> web.Response:
        action, _ = await self.take(request)
        if action.status:
            return self.error_response(action)
        return web.Response(status=200)
