"""Anthropic's own answer for an Anthropic client: the stream's events relayed byte for byte (pure).

When a ``/v1/messages`` request is served by an Anthropic deployment, nothing is translated on the way
back: thinking and redacted thinking with their signatures, citations, server tool blocks, cache
usage and any event type Anthropic adds later reach the client exactly as Anthropic sent them. Each
``data:`` line is still read, for three things: the usage (``message_start`` carries the input and
cache tokens, ``message_delta`` the output tokens), the end (``message_stop``) and an ``error`` event;
the content deltas, nearly all of a stream, are told apart by their ``event:`` line and not parsed.

``message_start`` and ``ping`` are held back until the first content block starts, so an error that
Anthropic reports before any content (an overload right after ``message_start``) is raised as a
``ProxyError`` while the router can still retry or fall back. The client API tells these events from
the gateway's OpenAI chunks by their first bytes (``event:``), see ``frontends/anthropic.py``.
"""

from __future__ import annotations

import orjson

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Usage
from proxyllm.providers.anthropic.common import usage_of
from proxyllm.providers.anthropic.errors import error_from_body

HELD = (b"message_start", b"ping")
# Events whose data the proxy needs; content deltas (nearly all of a stream) are relayed unparsed.
READ = frozenset({b"message_start", b"message_delta", b"message_stop", b"error"})


def _data(line: bytes) -> JSONObject:
    try:
        data = orjson.loads(line[5:])
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "Anthropic sent a stream event that is not JSON") from None
    return data if isinstance(data, dict) else {}


class NativeStream:
    """Feed it the upstream's lines; it returns whole events (bytes) to relay as they are."""

    __slots__ = ("done", "held", "lines", "started", "usage_data")

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.held: list[bytes] = []
        self.started = False  # a content block (or the message's end) was relayed
        self.done = False
        self.usage_data: JSONObject = {}

    @property
    def usage(self) -> Usage:
        return usage_of(self.usage_data)

    def feed(self, line: bytes) -> list[bytes]:
        if line.strip():
            self.lines.append(line)
            return []
        if not self.lines:
            return []
        event = b"".join(self.lines) + line
        named = self.lines[0][6:].strip() if self.lines[0].startswith(b"event:") else None
        kind = named or b""
        if named is None or named in READ:
            for part in self.lines:
                if part.startswith(b"data:"):
                    kind = self._read(_data(part))
        self.lines = []
        if not self.started and kind in HELD:
            self.held.append(event)
            return []
        if not self.started:
            self.started = True
            out, self.held = [*self.held, event], []
            return out
        return [event]

    def _read(self, data: JSONObject) -> bytes:
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self.usage_data.update(usage)
        elif kind == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):
                self.usage_data.update({k: v for k, v in usage.items() if v is not None})
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            err = error_from_body(data, status=None)
            err.message = f"upstream error mid-stream: {err.message}"
            raise err
        return kind.encode() if isinstance(kind, str) else b""

    def tail(self) -> list[bytes]:
        """An event the upstream ended without its blank line."""
        return self.feed(b"\n") if self.lines else []
