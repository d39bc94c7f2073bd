"""What one server process leaves to the next: the failure limiters' recent failures.

Everything else a client can see (runs, sessions, keys, idempotency keys) is in
the store already; the limiters live in memory. Without this, an idle exit under
socket activation (or any restart) would forgive an address its wrong keys and
passwords. Written at every clean stop as ``limits.json`` in the data directory
(mode 0600, replaced whole through a temporary file); read at start, where
failures older than the window are dropped. A stop with no failures in any window
writes nothing (and removes an older file: it has nothing left to hand over).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from .ratelimit import FailureLimiter

log = logging.getLogger("sysmenu.handover")

FILE = "limits.json"
_MAX_BYTES = 4 * 1024 * 1024  # a file larger than any limiter can write is not ours


def save(data_dir: Path, limiters: dict[str, FailureLimiter]) -> None:
    """Write the limiters' recent failures for the next process (errors are logged)."""
    state = {name: limiter.snapshot() for name, limiter in limiters.items()}
    if not any(state.values()):  # the usual clean stop: no file to write (nor to read at start)
        try:
            (data_dir / FILE).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove the expired rate limits %s: %s", data_dir / FILE, exc)
        return
    try:
        fd, temp = tempfile.mkstemp(prefix=".limits-", dir=data_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh)
            os.replace(temp, data_dir / FILE)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as exc:
        log.warning("cannot keep the rate limits for the next start: %s", exc)


def restore(data_dir: Path, limiters: dict[str, FailureLimiter]) -> None:
    """Take over what the previous process left, if anything (a bad file is ignored)."""
    path = data_dir / FILE
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise ValueError("too large")
        state = json.loads(path.read_text(encoding="utf-8"))
        for name, limiter in limiters.items():
            entries = state.get(name, {})
            limiter.restore(
                {
                    str(key): [float(t) for t in times]
                    for key, times in entries.items()
                    if isinstance(times, list) and all(isinstance(t, int | float) for t in times)
                }
            )
    except FileNotFoundError:
        return
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        log.warning("ignoring %s left by an earlier server: %s", path, exc)
