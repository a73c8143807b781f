"""Relaying a started stream to the client: idle timeout between events, errors as a final event.

The relay is a small class rather than an async generator function so that closing it always runs
its clean-up — closing the upstream and telling the router the stream ended (``ctx.on_stream_end``)
— even when it was closed before the first event was read (a client gone while headers were sent).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from types import TracebackType

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import ErrorKind, ProxyError


def error_event(err: ProxyError) -> bytes:
    return b"data: " + err.body() + b"\n\n"


class Relay(AsyncGenerator[bytes, None]):
    """The peeked first event, then the rest.

    A failure after the first event cannot be retried: it ends the stream with an error event and no
    ``[DONE]``, so the client can tell the answer is incomplete.
    """

    __slots__ = ("_closed", "_done", "_events", "_first", "_idle", "ctx")

    def __init__(
        self, ctx: RequestContext, first: bytes, events: AsyncGenerator[bytes, None], idle_timeout: float
    ) -> None:
        self.ctx = ctx
        self._first: bytes | None = first
        self._events = events
        self._idle = idle_timeout
        self._done = False
        self._closed = False

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        first = self._first
        if first is not None:
            self._first = None
            self.ctx.first_chunk_at = time.perf_counter()
            return first
        if self._done:
            raise StopAsyncIteration
        try:
            async with asyncio.timeout(self._idle):
                return await anext(self._events)
        except StopAsyncIteration:
            self.ctx.outcome = "success"
            await self.aclose()
            raise
        except TimeoutError:
            err = ProxyError(ErrorKind.TIMEOUT, f"upstream sent nothing for {self._idle:g}s mid-stream")
        except ProxyError as exc:
            err = exc
        self.ctx.outcome, self.ctx.error = "error", err
        await self.aclose()
        return error_event(err)

    async def asend(self, value: None) -> bytes:
        return await self.__anext__()

    async def athrow(
        self,
        typ: type[BaseException] | BaseException,
        val: BaseException | object = None,
        tb: TracebackType | None = None,
    ) -> bytes:
        await self.aclose()
        if isinstance(typ, BaseException):
            raise typ
        raise val if isinstance(val, BaseException) else typ()

    async def aclose(self) -> None:
        self._done = True
        self._first = None
        if self._closed:
            return
        self._closed = True
        try:
            await self._events.aclose()
        finally:
            ended = self.ctx.on_stream_end
            if ended is not None:
                self.ctx.on_stream_end = None
                ended(self.ctx)


def relay(
    ctx: RequestContext, first: bytes, events: AsyncGenerator[bytes, None], idle_timeout: float
) -> AsyncGenerator[bytes, None]:
    return Relay(ctx, first, events, idle_timeout)


__all__ = ["Relay", "error_event", "relay"]
