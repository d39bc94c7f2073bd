"""Points in time as people write them in filters: ``since=yesterday``, ``until=2h``.

Accepted: an ISO 8601 date or date and time (``2026-11-24``, ``2026-11-24T18:30``,
``2026-11-24T18:30:00+01:00``; without a zone it is the server's local time),
``now``, ``today`` and ``yesterday`` (local midnight), or an age: a number and
``s``, ``m``, ``h``, ``d`` or ``w`` (``90s``, ``15m``, ``2h``, ``7d``, ``1w``),
meaning that long ago.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

HELP = "ISO 8601 (2026-11-24 or 2026-11-24T18:30), today, yesterday, now, or an age like 90s, 15m, 2h, 7d, 1w"
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _midnight(now: float, days_back: int) -> float:
    day = datetime.fromtimestamp(now).date() - timedelta(days=days_back)
    return datetime(day.year, day.month, day.day).timestamp()  # local midnight, DST-aware


def parse_time(text: str, now: float | None = None) -> float:
    """The Unix time `text` means; ValueError naming what is accepted."""
    now = time.time() if now is None else now
    value = text.strip().lower()
    if value == "now":
        return now
    if value == "today":
        return _midnight(now, 0)
    if value == "yesterday":
        return _midnight(now, 1)
    age = _AGE.fullmatch(value)
    if age:
        return now - float(age.group(1)) * _UNITS[age.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use {HELP})") from None
    return when.timestamp()  # a naive time is local time
