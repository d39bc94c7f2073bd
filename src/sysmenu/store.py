"""SQLite state: users, groups, API keys (hashed), runs and the audit log.

One connection per process, WAL mode, every change in one transaction. The
server and the CLI may use the same file at once; the server notices the
CLI's key changes through ``PRAGMA data_version``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GROUPS = {
    "admins": ("ADMIN", "SYSTEM"),
    "users": (),
}
PERMISSIONS = ("ADMIN", "SYSTEM")
KEY_PREFIX_LEN = 8
log = logging.getLogger("sysmenu.store")
RUN_STATES = ("running", "ok", "failed", "timeout", "killed", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    permissions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS user_groups (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL REFERENCES groups(name),
    PRIMARY KEY (user_id, group_name)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    digest TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL
);
CREATE INDEX IF NOT EXISTS api_keys_prefix ON api_keys(prefix);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    name TEXT NOT NULL,
    user TEXT,
    auth TEXT,
    client TEXT,
    started REAL NOT NULL,
    ended REAL,
    duration REAL,
    state TEXT NOT NULL,
    returncode INTEGER,
    signal INTEGER,
    pid INTEGER,
    pid_start TEXT,
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    stdout_dropped INTEGER NOT NULL DEFAULT 0,
    stderr_dropped INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS runs_action ON runs(source, action, id);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state, id);
CREATE UNIQUE INDEX IF NOT EXISTS runs_idempotency ON runs(user, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    password_at REAL NOT NULL,
    client TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    event TEXT NOT NULL,
    user TEXT,
    auth TEXT,
    client TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
"""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    groups: tuple[str, ...]
    permissions: frozenset[str]
    has_password: bool = False

    def can(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    user: str
    name: str
    prefix: str
    created: float
    revoked: float | None


SESSION_IDLE = 14 * 86400  # a session unused this long ends
SESSION_LIFETIME = 30 * 86400  # and any session ends this long after its login
SESSION_TOUCH = 3600  # last use is written at most this often


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: User
    csrf: str
    created: float
    password_at: float  # when the password was last checked (login)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class StoreError(Exception):
    """A store operation that cannot be done (unknown user, duplicate name...)."""


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._keys: dict[str, list[tuple[str, User]]] | None = None
        self._data_version = -1
        try:
            self._create_schema()
        except sqlite3.OperationalError as exc:
            # A read-only file (or a full disk) with a schema already in it: serve
            # what can be read; every write answers 503 until the disk is back.
            if not self._has_schema():
                raise StoreError(f"cannot set up the database {self.path}: {exc}") from None
            log.error("database %s cannot be written (%s): running read-only", self.path, exc)

    def _create_schema(self) -> None:
        # executescript() would commit on its own; run the statements in our transaction.
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            for name, perms in GROUPS.items():
                self.db.execute(
                    "INSERT INTO groups(name, permissions) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                    (name, json.dumps(list(perms))),
                )

    def _has_schema(self) -> bool:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {"users", "api_keys", "runs", "audit", "groups", "sessions"} <= tables

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self, *, keys: bool = True) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it is written, or none of it.

        `keys`: whether it may change users or keys, so that the key cache is dropped
        (other connections' changes are seen through ``PRAGMA data_version``; this
        connection's own are not). Run and audit records pass False: they are written
        on every execute, and reloading the keys after each would cost every request."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")  # a full disk can fail here: roll back below
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        finally:
            if keys:
                self._keys = None

    # -- users -----------------------------------------------------------

    def _user(self, row: sqlite3.Row) -> User:
        groups = tuple(
            r[0]
            for r in self.db.execute(
                "SELECT group_name FROM user_groups WHERE user_id=? ORDER BY group_name", (row["id"],)
            )
        )
        perms: set[str] = set()
        for group in groups:
            (raw,) = self.db.execute("SELECT permissions FROM groups WHERE name=?", (group,)).fetchone()
            perms.update(json.loads(raw))
        return User(row["id"], row["name"], groups, frozenset(perms), row["password_hash"] is not None)

    def add_user(self, name: str, groups: list[str], password_hash: str | None = None) -> User:
        if not name or name != name.strip():
            raise StoreError(f"invalid user name {name!r}")
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise StoreError(f"unknown group {unknown[0]!r} (known: {', '.join(GROUPS)})")
        with self.transaction() as db:
            try:
                cur = db.execute(
                    "INSERT INTO users(name, password_hash, created) VALUES (?, ?, ?)",
                    (name, password_hash, time.time()),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"user {name!r} exists already") from None
            for group in groups:
                db.execute("INSERT INTO user_groups VALUES (?, ?)", (cur.lastrowid, group))
        user = self.get_user(name)
        assert user is not None
        return user

    def get_user(self, name: str) -> User | None:
        row = self.db.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
        return self._user(row) if row else None

    def password_hash(self, name: str) -> str | None:
        row = self.db.execute("SELECT password_hash FROM users WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def set_password(self, name: str, password_hash: str) -> None:
        with self.transaction() as db:
            cur = db.execute("UPDATE users SET password_hash=? WHERE name=?", (password_hash, name))
            if cur.rowcount == 0:
                raise StoreError(f"no user {name!r}")
            # A new password ends every session opened with the old one.
            db.execute("DELETE FROM sessions WHERE user_id=(SELECT id FROM users WHERE name=?)", (name,))

    def list_users(self) -> list[User]:
        return [self._user(r) for r in self.db.execute("SELECT * FROM users ORDER BY name")]

    def remove_user(self, name: str) -> None:
        with self.transaction() as db:
            cur = db.execute("DELETE FROM users WHERE name=?", (name,))
            if cur.rowcount == 0:
                raise StoreError(f"no user {name!r}")

    def count_users(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM users").fetchone()[0])

    # -- browser sessions -------------------------------------------------

    def create_session(self, user: User, client: str | None, replaces: str | None = None) -> Session:
        """A new session for `user` (password just checked); `replaces` (a token) ends."""
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        with self.transaction(keys=False) as db:
            if replaces:
                db.execute("DELETE FROM sessions WHERE digest=?", (digest(replaces),))
            db.execute("DELETE FROM sessions WHERE last_seen < ?", (now - SESSION_IDLE,))
            db.execute(
                "INSERT INTO sessions(digest, user_id, csrf, created, last_seen, password_at, client) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest(token), user.id, csrf, now, now, now, client),
            )
        return Session(token, user, csrf, now, now)

    def get_session(self, token: str) -> Session | None:
        """The live session of `token`, or None (unknown, idle too long or too old)."""
        row = self.db.execute("SELECT * FROM sessions WHERE digest=?", (digest(token),)).fetchone()
        if row is None:
            return None
        now = time.time()
        if now - row["last_seen"] > SESSION_IDLE or now - row["created"] > SESSION_LIFETIME:
            return None
        if now - row["last_seen"] > SESSION_TOUCH:
            try:
                with self.transaction(keys=False) as db:
                    db.execute("UPDATE sessions SET last_seen=? WHERE digest=?", (now, digest(token)))
            except sqlite3.Error as exc:  # a read-only store still serves its sessions
                log.warning("cannot note the use of a session: %s", exc)
        # the user row exists: removing a user deletes their sessions (ON DELETE CASCADE)
        user = self._user(self.db.execute("SELECT * FROM users WHERE id=?", (row["user_id"],)).fetchone())
        return Session(token, user, row["csrf"], row["created"], row["password_at"])

    def end_session(self, token: str) -> None:
        with self.transaction(keys=False) as db:
            db.execute("DELETE FROM sessions WHERE digest=?", (digest(token),))

    # -- API keys --------------------------------------------------------

    def create_key(self, user_name: str, name: str = "default") -> str:
        """Create a key for `user_name`; return the key itself (shown once, stored hashed)."""
        user = self.get_user(user_name)
        if user is None:
            raise StoreError(f"no user {user_name!r}")
        key = secrets.token_urlsafe(32)  # 256 bits
        with self.transaction() as db:
            db.execute(
                "INSERT INTO api_keys(user_id, name, prefix, digest, created) VALUES (?, ?, ?, ?, ?)",
                (user.id, name, key[:KEY_PREFIX_LEN], digest(key), time.time()),
            )
        return key

    def list_keys(self, user_name: str | None = None) -> list[ApiKey]:
        sql = (
            "SELECT k.id, u.name AS user, k.name, k.prefix, k.created, k.revoked "
            "FROM api_keys k JOIN users u ON u.id = k.user_id"
        )
        args: tuple[Any, ...] = ()
        if user_name is not None:
            sql += " WHERE u.name = ?"
            args = (user_name,)
        return [ApiKey(**dict(r)) for r in self.db.execute(sql + " ORDER BY k.id", args)]

    def revoke_key(self, ident: str) -> int:
        """Revoke by numeric id or by key prefix; return how many keys were revoked."""
        with self.transaction() as db:
            if ident.isdigit():
                cur = db.execute(
                    "UPDATE api_keys SET revoked=? WHERE id=? AND revoked IS NULL", (time.time(), int(ident))
                )
            else:
                cur = db.execute(
                    "UPDATE api_keys SET revoked=? WHERE prefix=? AND revoked IS NULL",
                    (time.time(), ident[:KEY_PREFIX_LEN]),
                )
            count = cur.rowcount
        if count == 0:
            raise StoreError(f"no active key {ident!r}")
        return count

    def _load_keys(self) -> dict[str, list[tuple[str, User]]]:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if self._keys is not None and version == self._data_version:
            return self._keys
        users = {u.id: u for u in self.list_users()}
        keys: dict[str, list[tuple[str, User]]] = {}
        for row in self.db.execute("SELECT user_id, prefix, digest FROM api_keys WHERE revoked IS NULL"):
            keys.setdefault(row["prefix"], []).append((row["digest"], users[row["user_id"]]))
        self._keys, self._data_version = keys, version
        return keys

    def user_for_key(self, key: str) -> User | None:
        """The owner of an active key, compared in constant time; else None."""
        candidates = self._load_keys().get(key[:KEY_PREFIX_LEN], ())
        presented = digest(key)
        found = None
        for stored, user in candidates:
            if hmac.compare_digest(stored, presented):
                found = user
        return found

    # -- audit -----------------------------------------------------------

    def audit(
        self, event: str, user: str | None, auth: str | None, client: str | None, **detail: Any
    ) -> None:
        """Append to the audit log; a failing disk is logged, never raised (the action
        it records has happened already)."""
        try:
            with self.transaction(keys=False) as db:
                db.execute(
                    "INSERT INTO audit(ts, event, user, auth, client, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), event, user, auth, client, json.dumps(detail)),
                )
        except sqlite3.Error as exc:
            log.error("cannot write the audit log (%s %s by %s): %s", event, detail, user, exc)

    def list_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]

    # -- runs ------------------------------------------------------------

    def start_run(
        self,
        source: str,
        action: str,
        name: str,
        user: str | None,
        auth: str | None,
        client: str | None,
        idempotency_key: str | None = None,
    ) -> int:
        """Record a run before its process starts; return its id."""
        with self.transaction(keys=False) as db:
            cur = db.execute(
                "INSERT INTO runs(source, action, name, user, auth, client, started, state, "
                "idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                (source, action, name, user, auth, client, time.time(), idempotency_key),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def set_run_process(self, run_id: int, pid: int, pid_start: str | None) -> None:
        with self.transaction(keys=False) as db:
            db.execute("UPDATE runs SET pid=?, pid_start=? WHERE id=?", (pid, pid_start, run_id))

    def finish_run(
        self,
        run_id: int,
        *,
        state: str,
        ended: float,
        duration: float,
        returncode: int | None,
        signal: int | None,
        stdout: str,
        stderr: str,
        stdout_dropped: int,
        stderr_dropped: int,
    ) -> None:
        """Write a run's end, all of it in one transaction."""
        with self.transaction(keys=False) as db:
            db.execute(
                "UPDATE runs SET state=?, ended=?, duration=?, returncode=?, signal=?, stdout=?, "
                "stderr=?, stdout_dropped=?, stderr_dropped=? WHERE id=?",
                (
                    state,
                    ended,
                    duration,
                    returncode,
                    signal,
                    stdout,
                    stderr,
                    stdout_dropped,
                    stderr_dropped,
                    run_id,
                ),
            )

    def interrupt_running(self) -> list[sqlite3.Row]:
        """Mark runs left `running` by a dead server as `interrupted`; return them."""
        with self.transaction(keys=False) as db:
            rows = db.execute("SELECT * FROM runs WHERE state='running'").fetchall()
            now = time.time()
            db.execute(
                "UPDATE runs SET state='interrupted', ended=?, duration=? - started WHERE state='running'",
                (now, now),
            )
        return rows

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    def find_idempotent(self, user: str | None, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT * FROM runs WHERE user IS ? AND idempotency_key=?", (user, key)
        ).fetchone()
        return dict(row) if row else None

    def list_runs(
        self,
        *,
        source: str | None = None,
        action: str | None = None,
        state: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Runs newest first, without their output; page with `before` (an id)."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("source", source), ("action", action), ("state", state)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if before is not None:
            where.append("id<?")
            args.append(before)
        sql = (
            "SELECT id, source, action, name, user, auth, client, started, ended, duration, "
            "state, returncode, signal, stdout_dropped, stderr_dropped FROM runs"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        return [dict(r) for r in self.db.execute(sql, (*args, limit))]
