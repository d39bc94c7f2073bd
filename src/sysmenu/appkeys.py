"""The Application Keys flow: how an app obtains a key without the user copying one.

An app probes (``GET /plugin/appkeys/probe``: 204), asks (``POST /plugin/appkeys/request``
with its name: 201 and an app token) and polls (``GET /plugin/appkeys/request/<app token>``:
202 while pending, 200 with the key once approved, 404 once denied or expired). A person
decides: on the System menu page (logged-in admins are prompted with the app's name and
the requesting address) or with ``sysmenu key approve|deny``. An approved request becomes
an ordinary hashed key, named after the app, of the approving user, handed out once.

Requests live in the database, so the CLI sees them and they outlive a restart. They
expire as OctoPrint's do: a pending request that is not polled for `POLL_TIMEOUT`
seconds, and any request older than `CUTOFF`. After a restart, pending requests get a
fresh poll window. The app token is stored only as its digest (a copy of the database
cannot collect a key); the user token only lets an admin decide.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from .accounts import digest
from .errors import StoreError
from .models import Who
from .store import Store

POLL_TIMEOUT = 5.0  # seconds a pending request lives without a poll (as OctoPrint)
CUTOFF = 600.0  # seconds any request lives (as OctoPrint's stale-request cut-off)
MAX_PENDING = 100  # pending requests in all
MAX_PENDING_PER_CLIENT = 5  # pending requests from one address
MAX_APP_NAME = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS app_requests (
    id INTEGER PRIMARY KEY,
    app_digest TEXT NOT NULL UNIQUE,
    user_token TEXT NOT NULL UNIQUE,
    app TEXT NOT NULL,
    user TEXT,
    client TEXT,
    created REAL NOT NULL,
    polled REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    decided_by TEXT,
    decided REAL
)
"""


class RequestRefused(Exception):
    """Too many pending requests (from this address, or in all)."""


@dataclass(frozen=True, slots=True)
class AppRequest:
    id: int
    user_token: str
    app: str
    user: str | None  # the user the app named, if any
    client: str | None
    created: float
    state: str

    def external(self) -> dict[str, Any]:
        """The pending request as OctoPrint's key listing shows one."""
        return {
            "app_id": self.app,
            "remote_address": self.client,
            "user_id": self.user,
            "user_token": self.user_token,
        }


def _request(row: sqlite3.Row) -> AppRequest:
    return AppRequest(
        row["id"], row["user_token"], row["app"], row["user"], row["client"], row["created"], row["state"]
    )


class AppKeys:
    """The requests, in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        try:
            with store.db.transaction() as db:
                db.execute(_SCHEMA)
        except sqlite3.OperationalError:  # a read-only store: the table may be there already
            pass

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "DELETE FROM app_requests WHERE created < ? OR (state = 'pending' AND polled < ?)",
            (now - CUTOFF, now - POLL_TIMEOUT),
        )

    def resume(self) -> None:
        """At server start: pending requests get a fresh poll window (their apps could
        not poll while the server was down)."""
        now = time.time()
        with self.store.db.transaction() as db:
            db.execute("DELETE FROM app_requests WHERE created < ?", (now - CUTOFF,))
            db.execute("UPDATE app_requests SET polled = ? WHERE state = 'pending'", (now,))

    def request(self, app: str, user: str | None, client: str | None) -> tuple[str, AppRequest]:
        """A new pending request; return the app token (given out once) and the request."""
        app_token, user_token, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        with self.store.db.transaction() as db:
            self._prune(db, now)
            (total,) = db.execute("SELECT count(*) FROM app_requests WHERE state = 'pending'").fetchone()
            (mine,) = db.execute(
                "SELECT count(*) FROM app_requests WHERE state = 'pending' AND client IS ?", (client,)
            ).fetchone()
            if total >= MAX_PENDING or mine >= MAX_PENDING_PER_CLIENT:
                raise RequestRefused("Too many pending key requests; try again later")
            cur = db.execute(
                "INSERT INTO app_requests(app_digest, user_token, app, user, client, created, polled) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest(app_token), user_token, app, user, client, now, now),
            )
        assert cur.lastrowid is not None
        return app_token, AppRequest(cur.lastrowid, user_token, app, user, client, now, "pending")

    def poll(self, app_token: str) -> tuple[str, str | None]:
        """The state of the request of `app_token`: ("pending", None), ("approved", key)
        (the key is made now and given out this once), or ("gone", None) for denied,
        expired or unknown requests."""
        now = time.time()
        with self.store.db.transaction() as db:
            self._prune(db, now)
            sql = "SELECT * FROM app_requests WHERE app_digest = ?"
            row = db.execute(sql, (digest(app_token),)).fetchone()
            if row is None:
                return "gone", None
            if row["state"] == "pending":
                db.execute("UPDATE app_requests SET polled = ? WHERE id = ?", (now, row["id"]))
                return "pending", None
            db.execute("DELETE FROM app_requests WHERE id = ?", (row["id"],))
        if row["state"] != "approved":
            return "gone", None
        try:
            key = self.store.accounts.create_key(row["decided_by"], row["app"])
        except StoreError:  # the approving user was removed in the meantime
            return "gone", None
        who = Who(row["decided_by"], None, row["client"])
        self.store.audit.record("appkey_issued", who, app=row["app"], request=row["id"])
        return "approved", key

    def pending(self) -> list[AppRequest]:
        """Live pending requests, oldest first."""
        now = time.time()
        rows = self.store.db.conn.execute(
            "SELECT * FROM app_requests WHERE state = 'pending' AND created >= ? AND polled >= ? ORDER BY id",
            (now - CUTOFF, now - POLL_TIMEOUT),
        )
        return [_request(r) for r in rows]

    def decidable(self, user: str, admin: bool) -> list[AppRequest]:
        """The pending requests `user` may decide: those naming them, and (for an
        admin) those naming no user."""
        return [r for r in self.pending() if r.user == user or (admin and r.user is None)]

    def find(self, ident: str) -> AppRequest | None:
        """A live pending request by id (the CLI's) or user token (the page's)."""
        for request in self.pending():
            token = request.user_token.encode()
            if str(request.id) == ident or secrets.compare_digest(token, ident.encode("utf-8", "replace")):
                return request
        return None

    def decide(self, request: AppRequest, approve: bool, decided_by: str) -> bool:
        """Record a decision; False when the request is no longer pending."""
        now = time.time()
        with self.store.db.transaction() as db:
            self._prune(db, now)
            cur = db.execute(
                "UPDATE app_requests SET state = ?, decided_by = ?, decided = ? "
                "WHERE id = ? AND state = 'pending'",
                ("approved" if approve else "denied", decided_by, now, request.id),
            )
        return bool(cur.rowcount == 1)
