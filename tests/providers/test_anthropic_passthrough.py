"""The byte-for-byte relay of Anthropic's stream (pure): events kept whole, the start held until content,
usage read, errors raised."""

from __future__ import annotations

import pytest

from proxyllm.core.errors import ErrorKind, ProxyError
from proxyllm.core.types import Usage
from proxyllm.providers.anthropic.passthrough import NativeStream
from tests.providers.test_e2e_messages_passthrough import BLOCKS, HEAD, TAIL


def lines(events: list[bytes], newline: bytes = b"\n") -> list[bytes]:
    out = []
    for event in events:
        out += [line + newline for line in event.split(b"\n")[:-1]]
    return out


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_events_come_out_whole_and_unchanged(newline: bytes) -> None:
    native = NativeStream()
    fed = lines([*HEAD, *BLOCKS, *TAIL], newline)
    out: list[bytes] = []
    for i, line in enumerate(fed):
        got = native.feed(line)
        if b"content_block_start" not in b"".join(fed[: i + 1]):
            assert got == [], "message_start and ping wait for the first content block"
        out += got
    assert b"".join(out) == b"".join(fed)
    assert native.done and native.usage == Usage(130, 7, cached_tokens=100, cache_creation_tokens=10)


def test_an_error_before_content_is_raised_and_nothing_was_sent() -> None:
    native = NativeStream()
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    sent = [event for line in lines(HEAD) for event in native.feed(line)]
    with pytest.raises(ProxyError) as info:
        for line in lines([error]):
            native.feed(line)
    assert sent == [] and info.value.kind is ErrorKind.UNAVAILABLE and "Overloaded" in info.value.message


def test_a_last_event_without_its_blank_line_is_kept() -> None:
    native = NativeStream()
    fed = lines([*HEAD, *BLOCKS, *TAIL])[:-1]  # the final blank line never came
    out = [event for line in fed for event in native.feed(line)] + native.tail()
    assert b"".join(out) == b"".join([*HEAD, *BLOCKS, *TAIL]) and native.done


def test_data_that_is_not_json_is_an_upstream_error() -> None:
    native = NativeStream()
    with pytest.raises(ProxyError) as info:
        for line in (b"event: message_delta\n", b"data: {nope\n", b"\n"):
            native.feed(line)
    assert info.value.kind is ErrorKind.UPSTREAM
