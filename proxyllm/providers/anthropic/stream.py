"""Anthropic Messages stream events -> OpenAI chat.completion.chunk SSE events (stateful, pure)."""

from __future__ import annotations

from proxyllm.core.errors import ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Usage
from proxyllm.providers.anthropic.common import JSON_TOOL, finish_reason, openai_usage, usage_of
from proxyllm.providers.anthropic.errors import error_from_body
from proxyllm.providers.sse import ChunkEncoder


class StreamTranslator:
    """Feed it the JSON of each ``data:`` line; it returns the OpenAI chunks to send.

    Nothing is emitted for ``message_start`` or ``ping``: the first chunk goes out with the first
    content, so an error the upstream reports right after ``message_start`` can still be retried.
    """

    def __init__(self, encoder: ChunkEncoder, *, json_mode: bool = False) -> None:
        self.encoder = encoder
        self.json_mode = json_mode
        self.started = False
        self.blocks: dict[int, JSONObject] = {}  # Anthropic block index -> block info
        self.tool_calls = 0
        self.usage_data: JSONObject = {}
        self.stop_reason: str | None = None
        self.done = False

    @property
    def usage(self) -> Usage:
        return usage_of(self.usage_data)

    def openai_usage(self) -> JSONObject:
        return openai_usage(self.usage_data)

    def _delta(self, delta: JSONObject, finish: str | None = None) -> bytes:
        if not self.started:
            self.started = True
            delta = {"role": "assistant", **delta}
        return self.encoder.choice({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None})

    def feed(self, event: JSONObject) -> list[bytes]:
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "message_start":
            message = event.get("message") or {}
            self.usage_data.update(message.get("usage") or {})
            return []
        if kind == "message_delta":
            delta = event.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.usage_data.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            return []
        if kind == "message_stop":
            self.done = True
            return [self._delta({}, finish_reason(self.stop_reason, json_mode=self.json_mode))]
        if kind == "error":
            raise self.error(event)
        return []  # ping, content_block_stop, unknown future events

    @staticmethod
    def error(event: JSONObject) -> ProxyError:
        err = error_from_body(event, status=None)
        err.message = f"upstream error mid-stream: {err.message}"
        return err

    def _block_start(self, event: JSONObject) -> list[bytes]:
        index = event.get("index", 0)
        block = event.get("content_block") or {}
        kind = block.get("type")
        info: JSONObject = {"type": kind}
        self.blocks[index] = info
        if kind == "tool_use":
            if self.json_mode and block.get("name") == JSON_TOOL:
                info["type"] = "json"
                return []
            info["tool_index"] = self.tool_calls
            self.tool_calls += 1
            call = {
                "index": info["tool_index"],
                "id": block.get("id") or "",
                "type": "function",
                "function": {"name": block.get("name") or "", "arguments": ""},
            }
            return [self._delta({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._delta({"content": block["text"]})]
        if kind == "redacted_thinking":
            return [self._delta({"thinking_blocks": [block]})]
        return []

    def _block_delta(self, event: JSONObject) -> list[bytes]:
        delta = event.get("delta") or {}
        kind = delta.get("type")
        info = self.blocks.get(event.get("index", 0), {})
        if kind == "text_delta":
            text = delta.get("text") or ""
            return [self._delta({"content": text})] if text else []
        if kind == "input_json_delta":
            partial = delta.get("partial_json") or ""
            if not partial:
                return []
            if info.get("type") == "json":
                return [self._delta({"content": partial})]
            call = {"index": info.get("tool_index", 0), "function": {"arguments": partial}}
            return [self._delta({"tool_calls": [call]})]
        if kind == "thinking_delta":
            text = delta.get("thinking") or ""
            return [self._delta({"reasoning_content": text})] if text else []
        if kind == "signature_delta":
            block = {"type": "thinking", "thinking": "", "signature": delta.get("signature") or ""}
            return [self._delta({"thinking_blocks": [block]})]
        return []  # citations_delta and future delta types carry nothing OpenAI clients read
