"""A cached response as bytes: one header line, then the body (or the stream's events, as sent).

Header: ``b|s created_ms prompt_tokens completion_tokens``. ``b`` is a JSON body; ``s`` the SSE events
of a complete stream, replayed as a stream, one event at a time.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from proxyllm.core import clock
from proxyllm.core.types import Usage

BODY = b"b"
STREAM = b"s"


class Entry:
    __slots__ = ("created", "data", "kind", "usage")

    def __init__(self, kind: bytes, data: bytes, usage: Usage | None, created: float) -> None:
        self.kind = kind
        self.data = data
        self.usage = usage
        self.created = created  # wall-clock seconds (replicas share entries)

    def age(self) -> float:
        return clock.time() - self.created

    def replay(self) -> AsyncGenerator[bytes, None]:
        return replay(self.data)


def encode(kind: bytes, data: bytes, usage: Usage | None) -> bytes:
    prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    return b"%s %d %d %d\n" % (kind, int(clock.time() * 1000), prompt, completion) + data


def decode(raw: bytes) -> Entry | None:
    head, sep, data = raw.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 4 or parts[0] not in (BODY, STREAM):
        return None  # not ours, or from an incompatible version: a miss
    try:
        created, prompt, completion = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None
    usage = Usage(prompt, completion) if prompt or completion else None
    return Entry(parts[0], data, usage, created / 1000)


async def replay(data: bytes) -> AsyncGenerator[bytes, None]:
    for event in data.split(b"\n\n"):
        if event:
            yield event + b"\n\n"
