"""Times in filters: ISO 8601, today, yesterday, ages."""

from __future__ import annotations

from datetime import datetime

import pytest

from sysmenu.timefilter import parse_time

NOW = datetime(2026, 11, 25, 15, 30, 0).timestamp()  # local time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("today", datetime(2026, 11, 25).timestamp()),
        ("Yesterday", datetime(2026, 11, 24).timestamp()),
        ("2h", NOW - 7200),
        ("90s", NOW - 90),
        ("15m", NOW - 900),
        ("7d", NOW - 7 * 86400),
        ("1w", NOW - 7 * 86400),
        ("1.5h", NOW - 5400),
        ("2026-11-24", datetime(2026, 11, 24).timestamp()),
        ("2026-11-24T18:30", datetime(2026, 11, 24, 18, 30).timestamp()),
        ("2026-11-24T18:30:00+00:00", 1795545000.0),
        ("2026-11-24T18:30:00Z", 1795545000.0),
    ],
)
def test_accepted(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "tomorrowish", "2h ago", "-2h", "2026-13-01", "h", "12"])
def test_refused_with_help(text: str) -> None:
    with pytest.raises(ValueError, match="today, yesterday"):
        parse_time(text, NOW)
