"""A local journal for writes the database could not take: queued rows at shutdown, and dead letters.

Each line is one JSON object ``{"kind": ..., "payload": {...}}``. Payload values that JSON has no type
for are tagged: ``{"$dec": "0.0125"}`` for a Decimal, ``{"$ts": "2026-11-29T21:00:00+00:00"}`` for a
datetime, so a replay gives back exactly what was queued. A journal file belongs to one database (its
name carries a digest of the database URL), so a proxy never replays another database's rows.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson

from proxyllm.core.jsontypes import JSONValue

log = logging.getLogger("proxyllm.spool")
# A queued write: its kind and its values (Decimal, datetime, ...: not JSON until encode() makes it so).
Payload = dict[str, object]
Item = tuple[str, Payload]


def _encode_value(value: object) -> JSONValue:
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime):
        return {"$ts": value.isoformat()}
    return value


def _decode_value(value: JSONValue) -> object:
    if isinstance(value, dict) and len(value) == 1:
        if "$dec" in value:
            return Decimal(value["$dec"])
        if "$ts" in value:
            return datetime.fromisoformat(value["$ts"])
    return value


def encode(kind: str, payload: Payload) -> bytes:
    return orjson.dumps({"kind": kind, "payload": {k: _encode_value(v) for k, v in payload.items()}})


def decode(line: bytes) -> Item:
    data = orjson.loads(line)
    return data["kind"], {k: _decode_value(v) for k, v in data["payload"].items()}


def database_tag(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class Spool:
    """Journal files in ``directory`` for one database."""

    def __init__(self, directory: str | os.PathLike[str], database_url: str) -> None:
        self.directory = Path(directory)
        self.tag = database_tag(database_url)

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}-{self.tag}.jsonl"

    @property
    def journal(self) -> Path:
        return self._path("queued")

    @property
    def dead_letters(self) -> Path:
        return self._path("dead-letters")

    def append(self, path: Path, items: list[Item]) -> None:
        """Append and fsync: the lines are on disk when this returns."""
        if not items:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        data = b"".join(encode(kind, payload) + b"\n" for kind, payload in items)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, path: Path) -> Iterator[Item]:
        if not path.exists():
            return
        with path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield decode(line)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    log.error("%s line %d is not a journal entry; kept in the file, skipped", path, number)

    def count(self, path: Path) -> int:
        if not path.exists():
            return 0
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def take_journal(self) -> tuple[list[Item], list[Path]]:
        """The queued items journaled by earlier runs, and the files to delete once they are written.

        A journal is renamed before it is read, so a second process starting now does not replay it
        too; a renamed one left by a process that died while replaying is taken again."""
        items: list[Item] = []
        claimed: list[Path] = []
        mine = self.journal.with_name(f"{self.journal.name}.replaying-{os.getpid()}")
        candidates = [*sorted(self.directory.glob(f"{self.journal.name}.replaying-*")), self.journal]
        for path in candidates:
            if path != self.journal and _alive(path.name.rsplit("-", 1)[-1]):
                continue
            target = mine if path == self.journal else path
            try:
                if path != target:
                    path.rename(target)
            except FileNotFoundError:
                continue
            if not target.exists():
                continue
            items.extend(self.read(target))
            if target not in claimed:
                claimed.append(target)
        return items, claimed


def _alive(pid: str) -> bool:
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
