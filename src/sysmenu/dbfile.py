"""The database file under a running server: deleted, replaced, read-only or full.

SQLite keeps writing to a file that was deleted (into an inode nobody will
see again) and a connection opened read-only stays read-only after the disk
is writable again. `FileHealth` notices both: before each write it checks that
the path still names the open file, and after a write failed because the
file could not be written it lets the store reopen it (at most once a second),
so that writes recover when the fault goes away. A missing file is never
re-created under a running server: writes are refused (503) until the file is
back, and a valid sysmenu database put in its place is taken up. Each change
of state is logged once and shown by ``GET /api/status``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time

log = logging.getLogger("sysmenu.store")

REOPEN_EVERY = 1.0  # seconds between attempts to reopen a file that could not be written
# errors after which a fresh connection may succeed where the open one cannot
_REOPENABLE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")


def identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class FileHealth:
    """What is wrong with the database file, if anything (`error`, since `since`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.opened = identity(path)
        self.error: str | None = None
        self.since: float | None = None
        self.error_moved = False  # the error is that the path no longer names the open file
        self._stale = False  # the open connection could not write: reopen before the next write
        self._tried = 0.0

    def moved(self) -> str | None:
        """None while the path names the file that is open; else what happened to it."""
        now = identity(self.path)
        if now is None:
            return f"database {self.path} was deleted"
        if now != self.opened:
            return f"database {self.path} was replaced by another file"
        return None

    def should_reopen(self) -> bool:
        """Whether to open the file afresh before writing (after a failure, rate-limited)."""
        if not self._stale or time.monotonic() - self._tried < REOPEN_EVERY:
            return False
        self._tried = time.monotonic()
        return True

    def reopened(self) -> None:
        self.opened = identity(self.path)
        self._stale = False

    def failed(self, exc: sqlite3.Error) -> None:
        """A write failed: note why (full, read-only...)."""
        name = getattr(exc, "sqlite_errorname", "")
        if any(name.startswith(prefix) for prefix in _REOPENABLE):
            self._stale = True
        self.report(f"database {self.path} cannot be written: {exc}")

    def report(self, error: str | None, *, moved: bool = False) -> None:
        self.error_moved = moved
        if error == self.error:
            return
        if error is None:
            log.warning("database %s can be written again (was: %s)", self.path, self.error)
        else:
            log.error("%s; nothing is written to it until this is fixed", error)
        self.error = error
        self.since = None if error is None else time.time()

    def status(self) -> dict[str, object]:
        return {"path": self.path, "error": self.error, "since": self.since}

    def current(self) -> dict[str, object]:
        """`status`, with the file looked at now (two stat calls: never waits for the
        database, so a locked one does not hold the status endpoint)."""
        moved = self.moved()
        if moved is not None:
            since = self.since if self.error_moved else time.time()
            return {"path": self.path, "error": f"{moved} (restart sysmenu to use a new one)", "since": since}
        if self.error_moved:
            return {"path": self.path, "error": None, "since": None}
        return self.status()
