"""The gateway's OpenAI stream as Ollama's NDJSON lines.

Text and thinking go out as they come; tool calls, which OpenAI streams in pieces, are sent whole
in one line once the model is done (as Ollama sends them); the last line has ``done: true`` with the
counts and timings. An Ollama upstream's own lines (bytes-through) are relayed untouched. A failure
mid-stream becomes Ollama's ``{"error": "..."}`` line.
"""

from __future__ import annotations

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.frontends.ollama.answer import created_at, done_reason, final_fields, ollama_tool_calls, reasoning_of


def error_line(message: str) -> bytes:
    return orjson.dumps({"error": message}) + b"\n"


class OllamaStreamEncoder:
    __slots__ = ("calls", "failed", "finish_reason", "generate", "model", "native")

    def __init__(self, model: str, *, generate: bool) -> None:
        self.model = model
        self.generate = generate
        self.calls: dict[int, JSONObject] = {}  # by index: id, name, argument text so far
        self.finish_reason: JSONValue = None
        self.failed = False
        self.native = False  # the upstream's own lines are being relayed

    def _line(self, *, content: str = "", thinking: str | None = None, calls: list[JSONValue] | None = None) -> bytes:
        line: JSONObject = {"model": self.model, "created_at": created_at()}
        if self.generate:
            line["response"] = content
            if thinking:
                line["thinking"] = thinking
        else:
            msg: JSONObject = {"role": "assistant", "content": content}
            if thinking:
                msg["thinking"] = thinking
            if calls:
                msg["tool_calls"] = calls
            line["message"] = msg
        line["done"] = False
        return orjson.dumps(line) + b"\n"

    def feed(self, event: bytes) -> list[bytes]:
        if event[:1] == b"{":  # NDJSON from an Ollama upstream
            self.native = True
            if event.endswith(b"\n\n"):  # replayed from the cache, which ends each event with a blank line
                event = event.rstrip(b"\n") + b"\n"
            return [event]
        out: list[bytes] = []
        for block in event.split(b"\n\n"):
            if not block.startswith(b"data:"):
                continue
            payload = block[5:].strip()
            if payload == b"[DONE]" or not payload:
                continue
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict):
                continue
            if "error" in data:
                err = data["error"]
                message = err.get("message") if isinstance(err, dict) else err
                self.failed = True
                out.append(error_line(str(message or "upstream error")))
                continue
            self._chunk(data, out)
        return out

    def _chunk(self, data: JSONObject, out: list[bytes]) -> None:
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            thinking = reasoning_of(delta)
            if (isinstance(content, str) and content) or thinking:
                out.append(self._line(content=content if isinstance(content, str) else "", thinking=thinking))
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._tool_piece(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _tool_piece(self, call: JSONObject) -> None:
        index = call["index"] if type(call.get("index")) is int else len(self.calls)
        held = self.calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
        if isinstance(call.get("id"), str):
            held["id"] = call["id"]
        fn = call.get("function") or {}
        if isinstance(fn.get("name"), str):
            held["name"] += fn["name"]
        if isinstance(fn.get("arguments"), str):
            held["arguments"] += fn["arguments"]

    async def finish(self, ctx: RequestContext) -> list[bytes]:
        if self.native or self.failed or ctx.outcome == "error":
            return []
        out: list[bytes] = []
        if self.calls and not self.generate:
            calls = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(self.calls.items())
            ]
            out.append(self._line(calls=ollama_tool_calls(calls)))
        final: JSONObject = {"model": self.model, "created_at": created_at()}
        if self.generate:
            final["response"] = ""
        else:
            final["message"] = {"role": "assistant", "content": ""}
        final.update(final_fields(ctx, done_reason(self.finish_reason)))
        out.append(orjson.dumps(final) + b"\n")
        return out
