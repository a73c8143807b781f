"""A real HTTP server on 127.0.0.1 with a script of what to do for the next requests.

Tests push actions with ``fail``/``stall``/... ; each request pops one action (FIFO), and with none
left the server answers normally. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import random
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Action:
    status: int | None = None  # answer with this error status
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the response starts
    stall_after: int | None = None  # stream: stop sending after N events (and hang)
    drop_after: int | None = None  # stream: close the connection after N events
    error_after: int | None = None  # stream: send a provider error event after N events
    chunk_delay: float = 0.0


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeUpstream:
    def __init__(self) -> None:
        self.plan: list[Action] = []
        self.requests: list[Recorded] = []
        self.reply_text = "Hello from the fake upstream"
        self.app = web.Application()
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.cancelled = 0  # streams whose client went away
        # Unscripted requests: fail this share of them at random (seeded), delay the others.
        self.failure_rate = 0.0
        self.failure_status = 500
        self.delay = 0.0
        self.random = random.Random(0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        # A handler still serving (a stalled stream) is cancelled after 1 s at stop, not aiohttp's 60 s.
        self.runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self.runner.setup()
        self.port = free_port()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def reset(self) -> None:
        self.reply_text = "Hello from the fake upstream"
        self.plan.clear()
        self.requests.clear()
        self.cancelled = 0
        self.failure_rate = 0.0
        self.failure_status = 500
        self.delay = 0.0
        self.random = random.Random(0)

    def push(self, *actions: Action) -> None:
        self.plan.extend(actions)

    def fail(self, status: int, message: str = "upstream failure", times: int = 1, **headers: str) -> None:
        for _ in range(times):
            self.plan.append(
                Action(
                    status=status,
                    body=self.error_body(status, message),
                    headers={k.replace("_", "-"): v for k, v in headers.items()},
                )
            )

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "server_error", "code": str(status)}}

    async def take(self, request: web.Request) -> tuple[Action, dict[str, Any]]:
        body = await request.json() if request.can_read_body else {}
        self.requests.append(Recorded(request.path, body, dict(request.headers)))
        action = self.plan.pop(0) if self.plan else self.unscripted()
        if action.delay:
            await asyncio.sleep(action.delay)
        return action, body

    def unscripted(self) -> Action:
        if self.failure_rate and self.random.random() < self.failure_rate:
            status = self.failure_status
            return Action(status=status, body=self.error_body(status, "random failure"), delay=self.delay)
        return Action(delay=self.delay)

    @staticmethod
    def error_response(action: Action) -> web.Response:
        return web.json_response(action.body, status=action.status or 500, headers=action.headers)

    async def stream_events(
        self, request: web.Request, action: Action, events: list[bytes], content_type: str
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": content_type})
        await resp.prepare(request)
        try:
            for i, event in enumerate(events):
                if action.drop_after is not None and i == action.drop_after:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                if action.stall_after is not None and i == action.stall_after:
                    await asyncio.sleep(3600)
                if action.error_after is not None and i == action.error_after:
                    await resp.write(self.stream_error_event())
                    return resp
                if action.chunk_delay:
                    await asyncio.sleep(action.chunk_delay)
                await resp.write(event)
        except (ConnectionResetError, asyncio.CancelledError):
            self.cancelled += 1
            raise
        return resp

    def stream_error_event(self) -> bytes:
        raise NotImplementedError
