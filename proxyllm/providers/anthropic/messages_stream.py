"""OpenAI chat.completion.chunk events -> Anthropic Messages stream events, for ``/v1/messages``.

Stateful and pure: feed it each OpenAI SSE event the gateway yields and send what it returns. The
Anthropic stream is ``message_start``, ``ping``, then per content block ``content_block_start`` /
``content_block_delta`` ... / ``content_block_stop``, and finally ``message_delta`` (stop reason and
usage) and ``message_stop``. An error event from the gateway becomes ``event: error``.
"""

from __future__ import annotations

import orjson

from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.providers.anthropic.common import anthropic_usage, stop_reason

# OpenAI error type -> Anthropic error type, for errors that happen mid-stream.
ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "service_unavailable": "overloaded_error",
    "timeout": "timeout_error",
}


def sse(name: str, data: JSONObject) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class AnthropicStreamEncoder:
    def __init__(self, *, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self.started = False
        self.finished = False
        self.failed = False
        self.next_index = 0
        self.open: tuple[str, int] | None = None  # (block type, OpenAI tool index or -1)
        self.tools: dict[int, int] = {}  # OpenAI tool-call index -> Anthropic block index
        self.finish_reason: str | None = None
        self.usage: JSONObject | None = None

    def feed(self, event: bytes) -> list[bytes]:
        out: list[bytes] = []
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                out.extend(self.finish())
                continue
            chunk = orjson.loads(data)
            if isinstance(chunk, dict):
                out.extend(self._chunk(chunk))
        return out

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        message: JSONObject = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [sse("message_start", {"type": "message_start", "message": message}), sse("ping", {"type": "ping"})]

    def _chunk(self, chunk: JSONObject) -> list[bytes]:
        if "error" in chunk:
            return self.error(chunk["error"])
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.extend(self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}))
                out.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
            for block in delta.get("thinking_blocks") or []:
                out.extend(self._thinking_block(block))
            text = delta.get("content")
            if isinstance(text, str) and text:
                out.extend(self._open("text", {"type": "text", "text": ""}))
                out.append(self._delta({"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or []:
                out.extend(self._tool_call(call))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _delta(self, delta: JSONObject, index: int | None = None) -> bytes:
        at = self.next_index - 1 if index is None else index
        return sse("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [sse("content_block_stop", {"type": "content_block_stop", "index": self.next_index - 1})]

    def _open(self, kind: str, block: JSONObject, tool: int = -1) -> list[bytes]:
        if self.open == (kind, tool):
            return []
        out = self._close()
        index = self.next_index
        self.next_index += 1
        self.open = (kind, tool)
        out.append(sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}))
        return out

    def _thinking_block(self, block: JSONValue) -> list[bytes]:
        if not isinstance(block, dict):
            return []
        if block.get("type") == "redacted_thinking":
            out = self._open("redacted_thinking", dict(block))
            return out + self._close()
        signature = block.get("signature")
        if block.get("type") == "thinking" and isinstance(signature, str) and signature:
            out = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            return [*out, self._delta({"type": "signature_delta", "signature": signature})]
        return []

    def _tool_call(self, call: JSONValue) -> list[bytes]:
        if not isinstance(call, dict):
            return []
        index = call.get("index", 0)
        fn = call.get("function") or {}
        out: list[bytes] = []
        if index not in self.tools:
            block: JSONObject = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self.message_id}_{index}",
                "name": fn.get("name") or "",
                "input": {},
            }
            out.extend(self._open("tool_use", block, index))
            self.tools[index] = self.next_index - 1
        arguments = fn.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out.append(self._delta(delta, self.tools[index]))
        return out

    def finish(self, fallback_usage: JSONObject | None = None) -> list[bytes]:
        """The closing events; ``fallback_usage`` (OpenAI shape) is used when no usage chunk came."""
        if self.finished or self.failed:
            return []
        out = self._start() + self._close()
        self.finished = True
        usage = anthropic_usage(self.usage or fallback_usage)
        delta = {"stop_reason": stop_reason(self.finish_reason), "stop_sequence": None}
        out.append(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(sse("message_stop", {"type": "message_stop"}))
        return out

    def error(self, err: JSONValue) -> list[bytes]:
        self.failed = True
        err = err if isinstance(err, dict) else {"message": str(err)}
        kind = ERROR_TYPES.get(str(err.get("type")), "api_error")
        body = {"type": "error", "error": {"type": kind, "message": str(err.get("message") or "upstream error")}}
        return [sse("error", body)]


def message_events(message: JSONObject) -> list[bytes]:
    """A whole Anthropic message as stream events (for an answer that arrived in one piece)."""
    head = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 0}}
    out = [sse("message_start", {"type": "message_start", "message": head})]
    for index, block in enumerate(message["content"]):
        kind = block.get("type")
        start = dict(block)
        delta: JSONObject | None = None
        if kind == "text":
            start["text"], delta = "", {"type": "text_delta", "text": block.get("text", "")}
        elif kind == "tool_use":
            start["input"] = {}
            delta = {"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input") or {}).decode()}
        elif kind == "thinking":
            start["thinking"], delta = "", {"type": "thinking_delta", "thinking": block.get("thinking", "")}
        out.append(sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        if delta is not None:
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta_body = {"stop_reason": message["stop_reason"], "stop_sequence": message.get("stop_sequence")}
    out.append(sse("message_delta", {"type": "message_delta", "delta": delta_body, "usage": message["usage"]}))
    out.append(sse("message_stop", {"type": "message_stop"}))
    return out
