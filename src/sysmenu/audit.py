"""The audit log: who did what, appended, never raising (the act has happened)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any

from .database import Database
from .models import Who

log = logging.getLogger("sysmenu.store")

NOBODY = Who()


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, event: str, who: Who = NOBODY, **detail: object) -> None:
        """Append to the audit log; a failing disk is logged, never raised (the action
        it records has happened already)."""
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO audit(ts, event, user, auth, client, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), event, who.user, who.auth, who.client, json.dumps(detail)),
                )
        except sqlite3.Error as exc:
            log.error("cannot write the audit log (%s %s by %s): %s", event, detail, who.user, exc)

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries first, their detail decoded."""
        rows = self.db.conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]
