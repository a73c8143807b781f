"""Shared by the stub executables (tailscaled, tailscale, proxyllm) that test_entrypoint.py puts on PATH.

They record their arguments and environment under ``$STUB_DIR`` and follow the scenario set by
``STUB_*`` variables; every call appends one line to ``$STUB_DIR/events`` so the order can be checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DIR = Path(os.environ["STUB_DIR"])


def event(line: str) -> None:
    with (DIR / "events").open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def record(name: str, data: Any) -> None:
    tmp = DIR / f".{name}.tmp"
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(DIR / name)


def append(name: str, data: Any) -> None:
    with (DIR / name).open("a", encoding="utf-8") as f:
        f.write(json.dumps(data) + "\n")


def bump(name: str) -> int:
    path = DIR / name
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count
