"""The one list of deployments the proxy serves, kept by where each came from.

Three sources feed it: the config file (fixed at start), Ollama discovery (``make run`` without a
config) and models stored in the database (``/model/new``; replicas kept in step by ``ops/sync.py``).
A source replaces its own part as a whole; every change rebuilds the router's model groups, so nothing
else keeps a copy of the list or mutates it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum

from proxyllm.core.deployment import Deployment


class Source(Enum):
    CONFIG = "config"
    DISCOVERED = "discovered"
    DATABASE = "database"


class DeploymentTable:
    def __init__(self, configured: list[Deployment]) -> None:
        self._parts: dict[Source, list[Deployment]] = {source: [] for source in Source}
        self._parts[Source.CONFIG] = list(configured)
        self._all = list(configured)
        self._listeners: list[Callable[[list[Deployment]], None]] = []

    def on_change(self, listener: Callable[[list[Deployment]], None]) -> None:
        """``listener(all_deployments)`` after every change (the router rebuilds its groups)."""
        self._listeners.append(listener)

    @property
    def all(self) -> list[Deployment]:
        return self._all

    def __iter__(self) -> Iterator[Deployment]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def part(self, source: Source) -> list[Deployment]:
        return list(self._parts[source])

    def replace(self, source: Source, deployments: list[Deployment]) -> None:
        self._parts[source] = list(deployments)
        self._all = [dep for part in self._parts.values() for dep in part]
        for listener in self._listeners:
            listener(self._all)

    def source_of(self, deployment_id: str) -> Source | None:
        for source, part in self._parts.items():
            if any(dep.id == deployment_id for dep in part):
                return source
        return None
