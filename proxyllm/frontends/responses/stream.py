"""Responses API streaming events, from the gateway's chat completion chunks or passed through.

An upstream that speaks only chat streams ``chat.completion.chunk`` events; they become the Responses
event sequence: ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added``, its content part and deltas (``response.output_text.delta``,
``response.reasoning_text.delta``, ``response.function_call_arguments.delta``), their ``.done``
events and ``response.output_item.done``; at the end ``response.completed`` (or
``response.incomplete``) with usage. A failure mid-stream ends with ``error`` and
``response.failed``. Every event carries its ``sequence_number``.

An upstream that speaks Responses already sends these events: they are relayed unchanged, and only
the final one is parsed, to keep the stored response.
"""

from __future__ import annotations

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.types import Usage
from proxyllm.frontends.responses.output import (
    call_item,
    finish,
    message_item,
    reasoning_item,
    skeleton,
)
from proxyllm.frontends.responses.request import ResponsesRequest, new_id

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def sse(kind: str, data: JSONObject) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Text:
    """An open message or reasoning item being streamed."""

    __slots__ = ("index", "item_id", "kind", "parts")

    def __init__(self, kind: str, index: int) -> None:
        self.kind = kind  # "message" | "reasoning"
        self.index = index
        self.item_id = new_id("msg" if kind == "message" else "rs")
        self.parts: list[str] = []


class _Call:
    __slots__ = ("arguments", "call_id", "custom", "index", "item_id", "name")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index = index
        self.item_id = new_id("fc")
        self.call_id = call_id
        self.name = name  # the chat name (see ``chat.ToolName`` for namespaced and custom tools)
        self.custom = False
        self.arguments: list[str] = []


class ResponsesStreamEncoder:
    """Feeds on the gateway's SSE events; ``response`` is the final Response object once finished."""

    def __init__(self, request: ResponsesRequest, *, model: str) -> None:
        self.request = request
        self.model = model
        self.seq = 0
        self.native: bool | None = None  # decided by the first event
        self.started = False
        self.response: JSONObject | None = None  # set when the stream ended (to store it)
        self.output: list[JSONObject | None] = []
        self.text: _Text | None = None
        self.calls: dict[int, _Call] = {}
        self.finish_reason: JSONValue = None
        self.usage: Usage | None = None
        self.failed = False
        self.held: bytes | None = None  # an upstream's final event, held back until ``finish``

    # -- events --------------------------------------------------------------------------------

    def _event(self, kind: str, data: JSONObject) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return sse(kind, data)

    def _start(self) -> list[bytes]:
        self.started = True
        response = skeleton(self.request, model=self.model, status="in_progress")
        return [
            self._event("response.created", {"response": response}),
            self._event("response.in_progress", {"response": response}),
        ]

    def feed(self, event: bytes) -> list[bytes]:
        if self.native is None:
            self.native = event.startswith(b"event:") or b'"type":"response.' in event[:200]
        if self.native:
            return self._native(event)
        out: list[bytes] = [] if self.started else self._start()
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if not data or data == b"[DONE]":
                continue
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                out.extend(self._fail(chunk["error"]))
                continue
            out.extend(self._chunk(chunk))
        return out

    def _native(self, event: bytes) -> list[bytes]:
        """Relay an upstream Responses event; keep the final response; turn a relay error into events."""
        if event.startswith(b'data: {"error"'):
            try:
                error = orjson.loads(event[5:]).get("error")
            except (orjson.JSONDecodeError, AttributeError):
                error = None
            return self._fail(error)
        self.seq += event.count(b"\ndata:") + event.startswith(b"data:")
        if any(t.encode() in event for t in TERMINAL):
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                try:
                    data = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    continue
                if isinstance(data, dict) and data.get("type") in TERMINAL and isinstance(data.get("response"), dict):
                    self.response = data["response"]
                    self.held = event  # sent by ``finish``, once the response may be stored
                    return []
        return [event]

    def _chunk(self, chunk: JSONObject) -> list[bytes]:
        out: list[bytes] = []
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    out.extend(self._text_delta("reasoning", reasoning))
                content = delta.get("content")
                if isinstance(content, str) and content:
                    out.extend(self._text_delta("message", content))
                for call in delta.get("tool_calls") or []:
                    if isinstance(call, dict):
                        out.extend(self._call_delta(call))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _text_delta(self, kind: str, delta: str) -> list[bytes]:
        out: list[bytes] = []
        text = self.text
        if text is None or text.kind != kind:
            if text is not None:
                out.extend(self._close_text())
            text = self.text = _Text(kind, len(self.output))
            self.output.append(None)
            if kind == "message":
                item = {**message_item("", text.item_id, "in_progress"), "content": []}
                part: JSONObject = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            else:
                item = {**reasoning_item("", text.item_id), "content": []}
                part = {"type": "reasoning_text", "text": ""}
            ids = {"item_id": text.item_id, "output_index": text.index}
            out.append(self._event("response.output_item.added", {"output_index": text.index, "item": item}))
            out.append(self._event("response.content_part.added", {**ids, "content_index": 0, "part": part}))
        text.parts.append(delta)
        ids = {"item_id": text.item_id, "output_index": text.index, "content_index": 0}
        if kind == "message":
            out.append(self._event("response.output_text.delta", {**ids, "delta": delta, "logprobs": []}))
        else:
            out.append(self._event("response.reasoning_text.delta", {**ids, "delta": delta}))
        return out

    def _close_text(self) -> list[bytes]:
        text = self.text
        if text is None:
            return []
        self.text = None
        full = "".join(text.parts)
        ids = {"item_id": text.item_id, "output_index": text.index, "content_index": 0}
        if text.kind == "message":
            item = message_item(full, text.item_id)
            part = item["content"][0]
            done = self._event("response.output_text.done", {**ids, "text": full, "logprobs": []})
        else:
            item = reasoning_item(full, text.item_id)
            part = item["content"][0]
            done = self._event("response.reasoning_text.done", {**ids, "text": full})
        self.output[text.index] = item
        return [
            done,
            self._event("response.content_part.done", {**ids, "part": part}),
            self._event("response.output_item.done", {"output_index": text.index, "item": item}),
        ]

    def _call_delta(self, delta: JSONObject) -> list[bytes]:
        out: list[bytes] = []
        index = delta.get("index", 0)
        index = index if isinstance(index, int) else 0
        found = delta.get("function")
        function: JSONObject = found if isinstance(found, dict) else {}
        call = self.calls.get(index)
        if call is None:
            out.extend(self._close_text())
            call_id = str(delta["id"]) if isinstance(delta.get("id"), str) else new_id("call")
            name = str(function["name"]) if isinstance(function.get("name"), str) else ""
            call = self.calls[index] = _Call(len(self.output), call_id, name)
            self.output.append(None)
            item = {**call_item(self.request, call.call_id, call.name, "", call.item_id), "status": "in_progress"}
            call.custom = item["type"] == "custom_tool_call"
            out.append(self._event("response.output_item.added", {"output_index": call.index, "item": item}))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call.arguments.append(arguments)
            if not call.custom:  # a custom tool's input is known once its JSON wrapper is complete
                ids = {"item_id": call.item_id, "output_index": call.index}
                out.append(self._event("response.function_call_arguments.delta", {**ids, "delta": arguments}))
        return out

    def _close_calls(self) -> list[bytes]:
        out = []
        for call in self.calls.values():
            arguments = "".join(call.arguments)
            item = call_item(self.request, call.call_id, call.name, arguments, call.item_id)
            self.output[call.index] = item
            ids = {"item_id": call.item_id, "output_index": call.index}
            if call.custom:
                text = item["input"]
                out.append(self._event("response.custom_tool_call_input.delta", {**ids, "delta": text}))
                out.append(self._event("response.custom_tool_call_input.done", {**ids, "input": text}))
            else:
                done = {**ids, "arguments": arguments, "name": item["name"]}
                out.append(self._event("response.function_call_arguments.done", done))
            out.append(self._event("response.output_item.done", {"output_index": call.index, "item": item}))
        self.calls.clear()
        return out

    def _fail(self, error: JSONValue) -> list[bytes]:
        self.failed = True
        message = error.get("message") if isinstance(error, dict) else error
        message = message if isinstance(message, str) and message else "the upstream failed mid-stream"
        code = (error.get("code") if isinstance(error, dict) else None) or "server_error"
        out = [*self._close_text(), *self._close_calls()]
        if not self.started and not self.native:
            out = [*self._start(), *out]
        response = self._final("failed")
        response["error"] = {"code": str(code), "message": message}
        self.response = response
        out.append(self._event("error", {"code": str(code), "message": message, "param": None}))
        out.append(self._event("response.failed", {"response": response}))
        return out

    def _final(self, status: str) -> JSONObject:
        response = skeleton(self.request, model=self.model, status=status)
        response["output"] = [item for item in self.output if item is not None]
        return response

    def finish(self, ctx: RequestContext) -> list[bytes]:
        if self.native:
            return [self.held] if self.held is not None else []
        if self.failed:
            return []
        out = [] if self.started else self._start()
        out.extend(self._close_text())
        out.extend(self._close_calls())
        response = finish(self._final("completed"), self.finish_reason, ctx.usage or self.usage)
        self.response = response
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        out.append(self._event(kind, {"response": response}))
        return out


def replay(response: JSONObject) -> list[bytes]:
    """The event sequence of a finished Response object (for an answer that arrived as one body)."""
    seq = 0
    out: list[bytes] = []

    def event(kind: str, data: JSONObject) -> None:
        nonlocal seq
        out.append(sse(kind, {"type": kind, "sequence_number": seq, **data}))
        seq += 1

    start = {**response, "status": "in_progress", "output": [], "usage": None}
    event("response.created", {"response": start})
    event("response.in_progress", {"response": start})
    for index, item in enumerate(response.get("output") or []):
        kind = item.get("type")
        added = {**item, "status": "in_progress"} if "status" in item else dict(item)
        if kind in ("message", "reasoning"):
            added["content"] = []
        if kind == "function_call":
            added["arguments"] = ""
        if kind == "custom_tool_call":
            added["input"] = ""
        event("response.output_item.added", {"output_index": index, "item": added})
        ids = {"item_id": item.get("id"), "output_index": index}
        if kind in ("message", "reasoning"):
            for c, part in enumerate(item.get("content") or []):
                ptype = part.get("type")
                empty = {**part, "text": ""} if "text" in part else dict(part)
                event("response.content_part.added", {**ids, "content_index": c, "part": empty})
                if ptype == "output_text":
                    event(
                        "response.output_text.delta", {**ids, "content_index": c, "delta": part["text"], "logprobs": []}
                    )
                    event(
                        "response.output_text.done", {**ids, "content_index": c, "text": part["text"], "logprobs": []}
                    )
                elif ptype == "reasoning_text":
                    event("response.reasoning_text.delta", {**ids, "content_index": c, "delta": part["text"]})
                    event("response.reasoning_text.done", {**ids, "content_index": c, "text": part["text"]})
                event("response.content_part.done", {**ids, "content_index": c, "part": part})
        elif kind == "custom_tool_call":
            event("response.custom_tool_call_input.delta", {**ids, "delta": item.get("input", "")})
            event("response.custom_tool_call_input.done", {**ids, "input": item.get("input", "")})
        elif kind == "function_call":
            event("response.function_call_arguments.delta", {**ids, "delta": item.get("arguments", "")})
            event(
                "response.function_call_arguments.done",
                {**ids, "arguments": item.get("arguments", ""), "name": item.get("name")},
            )
        event("response.output_item.done", {"output_index": index, "item": item})
    final = "response.incomplete" if response.get("status") == "incomplete" else "response.completed"
    event(final, {"response": response})
    return out
