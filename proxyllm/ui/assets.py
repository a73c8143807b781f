"""The dashboard's static files, read once from the package and served from memory.

Only files that ship in ``proxyllm/ui/static`` can be named, so no path from a request ever reaches
the filesystem. Each has a strong ETag; browsers revalidate (file names carry no version).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _walk(folder: Traversable, prefix: str) -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_walk(entry, f"{name}/"))
            continue
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix not in TYPES:
            continue
        body = entry.read_bytes()
        found[name] = Asset(body, TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return found


@functools.cache
def assets() -> dict[str, Asset]:
    """Every packaged file by its path under ``static/`` (``js/app.js``, ``app.css``, ...)."""
    return _walk(resources.files("proxyllm.ui") / "static", "")


def shell() -> Asset:
    return assets()["index.html"]
