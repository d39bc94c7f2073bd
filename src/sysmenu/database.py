"""The SQLite database: connection, pragmas, schema and transactions.

One connection per process, WAL mode, every change in one transaction. The
server and the CLI may use the same file at once. The aggregates (accounts,
sessions, runs, audit) each own their tables and use this connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreError
from .models import GROUPS

log = logging.getLogger("sysmenu.store")

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
_TABLES = {"users", "api_keys", "runs", "audit", "groups", "sessions"}


class Database:
    """The connection to one SQLite file, its schema and its transactions."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
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
        with self.transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for name, perms in GROUPS.items():
                conn.execute(
                    "INSERT INTO groups(name, permissions) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                    (name, json.dumps(list(perms))),
                )

    def _has_schema(self) -> bool:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return tables >= _TABLES

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it is written, or none of it."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")  # a full disk can fail here: roll back below
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
