"""The store: one SQLite database and the aggregates kept in it.

`Database` holds the connection, schema and transactions; `Accounts` (users,
groups, keys), `Sessions`, `RunLog` and `AuditLog` each own their tables.
"""

from __future__ import annotations

from pathlib import Path

from .accounts import Accounts
from .audit import AuditLog
from .database import BUSY_TIMEOUT, Database
from .runlog import RunLog
from .sessions import Sessions

DATABASE_FILE = "sysmenu.db"  # in the data directory


class Store:
    """One database file and its aggregates, opened together."""

    def __init__(self, path: Path | str, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.db = Database(path, busy_timeout)
        self.accounts = Accounts(self.db)
        self.sessions = Sessions(self.db, self.accounts)
        self.runs = RunLog(self.db)
        self.audit = AuditLog(self.db)

    def close(self) -> None:
        self.db.close()
