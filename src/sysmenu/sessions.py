"""Browser sessions: created at login, looked up by token (stored hashed), ended."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time

from .accounts import Accounts, digest
from .database import Database
from .models import Session, User

log = logging.getLogger("sysmenu.store")

SESSION_IDLE = 14 * 86400  # a session unused this long ends
SESSION_LIFETIME = 30 * 86400  # and any session ends this long after its login
SESSION_TOUCH = 3600  # last use is written at most this often


class Sessions:
    def __init__(self, db: Database, accounts: Accounts) -> None:
        self.db = db
        self.accounts = accounts

    def create(self, user: User, client: str | None, replaces: str | None = None) -> Session:
        """A new session for `user` (password just checked); `replaces` (a token) ends."""
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        with self.db.transaction() as conn:
            if replaces:
                conn.execute("DELETE FROM sessions WHERE digest=?", (digest(replaces),))
            conn.execute("DELETE FROM sessions WHERE last_seen < ?", (now - SESSION_IDLE,))
            conn.execute(
                "INSERT INTO sessions(digest, user_id, csrf, created, last_seen, password_at, client) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest(token), user.id, csrf, now, now, now, client),
            )
        return Session(token, user, csrf, now, now)

    def get(self, token: str) -> Session | None:
        """The live session of `token`, or None (unknown, idle too long or too old)."""
        row = self.db.conn.execute("SELECT * FROM sessions WHERE digest=?", (digest(token),)).fetchone()
        if row is None:
            return None
        now = time.time()
        if now - row["last_seen"] > SESSION_IDLE or now - row["created"] > SESSION_LIFETIME:
            return None
        if now - row["last_seen"] > SESSION_TOUCH:
            try:
                with self.db.transaction() as conn:
                    conn.execute("UPDATE sessions SET last_seen=? WHERE digest=?", (now, digest(token)))
            except sqlite3.Error as exc:  # a read-only store still serves its sessions
                log.warning("cannot note the use of a session: %s", exc)
        # the user exists: removing a user deletes their sessions (ON DELETE CASCADE)
        user = self.accounts.user_by_id(row["user_id"])
        assert user is not None
        return Session(token, user, row["csrf"], row["created"], row["password_at"])

    def end(self, token: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM sessions WHERE digest=?", (digest(token),))
