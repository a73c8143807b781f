"""Other components' own atomic Lua scripts and announcements, on the shared state's Redis.

Rate limits and budgets need more than counters and marks: several checks and updates made at once,
in one round trip. ``Scripts`` runs such a script on the Redis that the shared state already uses,
with the same outage handling (an unreachable Redis is noticed once, logged once, and retried in the
background): whenever Redis is not usable the caller's ``local`` fallback answers instead.

``announce`` publishes a bare event to a group's subscribers in every replica (``seconds`` is 0 and
nothing is stored), for invalidations that need no state of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from proxyllm.core.memory_state import MemoryState
from proxyllm.core.shared_state import MarkEvent, SharedState

T = TypeVar("T")

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

    from proxyllm.state.redis import RedisState  # imported for real only when Redis is configured

Keys = Sequence[str]  # Redis key names
Args = Sequence[str | int]


class Script:
    """One registered Lua script; ``None`` inside when there is no Redis to run it on."""

    __slots__ = ("_script",)

    def __init__(self, script: AsyncScript | None) -> None:
        self._script = script


class Scripts:
    def __init__(self, state: SharedState) -> None:
        self.state = state
        # A shared state is either this process's memory or Redis (see proxyllm.state.shared_state).
        self._redis: RedisState | None = None if isinstance(state, MemoryState) else cast("RedisState", state)

    @property
    def namespace(self) -> str:
        return self._redis.namespace if self._redis is not None else "local"

    @property
    def shared(self) -> bool:
        """True while scripts run in Redis (configured and reachable)."""
        return self.state.shared

    def register(self, source: str) -> Script:
        return Script(self._redis._client.register_script(source) if self._redis is not None else None)

    async def run(self, script: Script, keys: Keys, args: Args, local: Callable[[], Awaitable[T]]) -> T:
        """The script's result from Redis, or ``local()``'s when Redis is absent or unreachable."""
        redis, registered = self._redis, script._script
        if redis is None or registered is None or not redis.shared:
            return await local()

        async def remote() -> T:
            result: T = await registered(keys=list(keys), args=list(args))  # the script's reply, as local() answers
            return result

        return await redis._op(remote, local)

    async def run_many(self, script: Script, calls: Sequence[tuple[Keys, Args]]) -> bool:
        """Run the script once per (keys, args) in one pipelined round trip; results are dropped.
        False when Redis is absent or unreachable (nothing ran)."""
        redis, registered = self._redis, script._script
        if redis is None or registered is None or not redis.shared or not calls:
            return False

        async def remote() -> bool:
            async with redis._client.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    await registered(keys=list(keys), args=list(args), client=pipe)
                await pipe.execute()
            return True

        async def local() -> bool:
            return False

        return await redis._op(remote, local)

    async def announce(self, group: str, member: str) -> None:
        """Tell ``group``'s subscribers in every replica about ``member`` (this one included)."""
        redis = self._redis
        if redis is None:
            self.state._deliver(MarkEvent(group, member, 0.0, ""))
            return

        async def remote() -> None:
            await redis._client.publish(redis._channel(group), f"{member}|0|")

        async def local() -> None:
            redis._deliver(MarkEvent(group, member, 0.0, ""))

        await redis._op(remote, local)
