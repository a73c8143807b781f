"""Relaying a started stream to the client: idle timeout between events, errors as a final event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from proxyllm.core.context import RequestContext
from proxyllm.errors import ErrorKind, ProxyError


def error_event(err: ProxyError) -> bytes:
    return b"data: " + err.body() + b"\n\n"


async def relay(
    ctx: RequestContext, first: bytes, events: AsyncGenerator[bytes, None], idle_timeout: float
) -> AsyncGenerator[bytes, None]:
    """Yield the peeked first event and the rest.

    A failure after the first event cannot be retried: it ends the stream with an error event and no
    ``[DONE]``, so the client can tell the answer is incomplete.
    """
    ctx.first_chunk_at = time.perf_counter()
    yield first
    try:
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    event = await anext(events)
            except StopAsyncIteration:
                break
            yield event
        ctx.outcome = "success"
    except TimeoutError:
        err = ProxyError(ErrorKind.TIMEOUT, f"upstream sent nothing for {idle_timeout:g}s mid-stream")
        ctx.outcome, ctx.error = "error", err
        yield error_event(err)
    except ProxyError as err:
        ctx.outcome, ctx.error = "error", err
        yield error_event(err)
    finally:
        await events.aclose()
