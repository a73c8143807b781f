"""The proxy's clock: wall time, monotonic time and aware datetimes from one place.

Everything that waits for time to pass — cache entries' TTLs, cooldowns, rate-limit windows, the key
cache, key expiry, budget periods — reads this clock, so a test moves time forward with
``clock.advance(seconds)`` instead of sleeping. In production the offset is zero and each call is the
standard library's plus one addition. (Redis keeps its own time: what lives there expires on Redis's
clock.)
"""

from __future__ import annotations

import time as _time
from datetime import UTC, datetime, timedelta

_offset = 0.0


def time() -> float:
    return _time.time() + _offset


def monotonic() -> float:
    return _time.monotonic() + _offset


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    moment = datetime.now(UTC)
    return moment + timedelta(seconds=_offset) if _offset else moment


def advance(seconds: float) -> None:
    """Move this process's clock forward (tests)."""
    global _offset
    _offset += seconds


def reset() -> None:
    global _offset
    _offset = 0.0
