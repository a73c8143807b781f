"""Key-cache invalidations shared by the replicas: what one replica changes, the others forget at once.

Every ``KeyCache.invalidate`` made by an admin route here (a key created, updated, blocked, deleted; a
user or team changed) is announced through the shared state's pub/sub; every replica drops that entry
(or all of them) and reads the database on the key's next request. Delivery takes milliseconds.

Without that announcement — no Redis, or a message lost while Redis was away — entries still expire:
a known key after the cache's ``ttl`` (10 s), an unknown key after its ``negative_ttl`` (2 s), so a
key created on one replica works on another at once unless that replica looked it up (and found
nothing) within the last 2 s. When Redis comes back after an outage every replica drops its whole
cache, since announcements may have been missed.
"""

from __future__ import annotations

import asyncio
import logging

from proxyllm.accounts.cache import KeyCache
from proxyllm.state import MarkEvent
from proxyllm.state.scripts import Scripts

log = logging.getLogger("proxyllm.keys")
GROUP = "key_invalidations"
EVERYTHING = "*"


class KeyInvalidations:
    def __init__(self, keys: KeyCache, scripts: Scripts) -> None:
        self.keys = keys
        self.scripts = scripts
        self._tasks: set[asyncio.Task[object]] = set()
        if scripts.state.distributed:
            scripts.state.subscribe(GROUP, self._received)
            scripts.state.on_recover(self._recovered)
            keys.on_invalidate = self.publish

    def publish(self, token: str | None) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the server's event loop (a script, a test): nothing to announce from here
        task = loop.create_task(self.scripts.announce(GROUP, token or EVERYTHING))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("announcing a key-cache invalidation failed", exc_info=task.exception())

    def _received(self, event: MarkEvent) -> None:
        self.keys.invalidate(None if event.member == EVERYTHING else event.member, announce=False)

    def _recovered(self) -> None:
        self.keys.invalidate(announce=False)
