"""LiteLLM durations: ``30s``, ``30m``, ``24h``, ``7d``, ``30d``, ``1mo``."""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

from proxyllm.core.errors import invalid_request

PATTERN = re.compile(r"^(\d+)(s|m|h|d|mo)$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


MAX_SECONDS = 100 * 366 * 86400  # a century: further than any budget or key lifetime needs


def check_duration(value: str, field: str) -> str:
    match = PATTERN.match(value.strip())
    if match is None or int(match.group(1)) == 0:
        raise invalid_request(
            f"'{field}' must be a positive duration like 30s, 30m, 24h, 7d, 30d or 1mo; got {value[:40]!r}",
            param=field,
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount * (31 * 86400 if unit == "mo" else UNITS[unit]) > MAX_SECONDS:
        raise invalid_request(f"'{field}' is too long: at most 100 years", param=field)
    return value.strip()


def add_duration(start: datetime, value: str) -> datetime:
    match = PATTERN.match(value)
    if match is None:
        raise ValueError(f"bad duration {value!r}")
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "mo":
        month = start.month - 1 + amount
        year, month = start.year + month // 12, month % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)
    return start + timedelta(seconds=amount * UNITS[unit])


def next_reset(now: datetime, duration: str, previous: datetime | None = None) -> datetime:
    """The first reset time after ``now`` on the schedule that started at ``previous`` (or now).

    Fixed-length periods skip the missed ones arithmetically: a schedule set (through the admin API)
    to start years ago with a period of seconds must not cost a loop per missed period."""
    start = previous or now
    match = PATTERN.match(duration)
    if match is not None and match.group(2) != "mo" and start < now:
        period = int(match.group(1)) * UNITS[match.group(2)]
        missed = int((now - start).total_seconds() // period)
        start = start + timedelta(seconds=missed * period)
    when = add_duration(start, duration)
    while when <= now:  # at most one more fixed period, or a month per missed month
        when = add_duration(when, duration)
    return when
