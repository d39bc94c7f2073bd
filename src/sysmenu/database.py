"""The SQLite database: connection, pragmas, schema, transactions, and the thread
the server's SQL runs on.

One connection per process, WAL mode, every change in one transaction. The
server and the CLI may use the same file at once. The aggregates (accounts,
sessions, runs, audit) use this connection; the tables of the first three are made
here, the audit log's by `AuditLog` (audit.SCHEMA, with its migration).

The server never runs SQL on its event loop: ``await db.run(fn, *args)`` runs
`fn` on one dedicated thread, so a locked or slow database delays only the
requests that need it. A short busy timeout bounds that delay; past it the
statement fails (the API answers 503). The CLI calls the same functions
directly. The one exception is `data_version`, read on a second connection that
never waits for a lock (WAL readers take none): it tells the key cache whether
anything changed, so that a valid cache answers without the thread.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import ParamSpec, TypeVar

from .dbfile import FileHealth
from .errors import StoreError
from .files import private_database, private_directory, private_file
from .models import GROUPS

log = logging.getLogger("sysmenu.store")

MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id names no row
IN_MEMORY = ":memory:"  # SQLite's name for a database that is no file
BUSY_TIMEOUT = 1.5  # seconds a statement waits for another connection's lock, then fails
_P = ParamSpec("_P")
_T = TypeVar("_T")

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
    revoked REAL,
    scope TEXT
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
    idempotency_key TEXT,
    leftovers TEXT NOT NULL DEFAULT '[]'
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
"""
# What a sysmenu database has (read-only, it is served as it is): the tables above and
# the audit log's, which AuditLog makes (audit.SCHEMA).
_TABLES = {"users", "api_keys", "runs", "audit", "groups", "sessions"}
# Columns added to a table after its first release: (table, column, declaration). A file
# made by an older sysmenu gains them at start-up (``CREATE TABLE IF NOT EXISTS`` does not).
_ADDED_COLUMNS = (
    ("runs", "arguments", "TEXT"),
    ("runs", "arguments_digest", "TEXT"),
    ("api_keys", "scope", "TEXT"),
    ("runs", "leftovers", "TEXT NOT NULL DEFAULT '[]'"),
)


class Database:
    """The connection to one SQLite file, its schema and its transactions."""

    def __init__(self, path: Path | str, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = str(path)
        in_memory = self.path == IN_MEMORY
        if not in_memory:
            private_directory(Path(self.path).parent)
            with suppress(OSError):  # a read-only directory: SQLite says what fails
                private_file(Path(self.path))
        self.busy_timeout = busy_timeout
        self.conn = self._connect()
        if not in_memory:
            private_database(Path(self.path))
        self.health = FileHealth(self.path)
        self._lock = threading.RLock()  # one transaction at a time, whichever thread asks
        self._pool: ThreadPoolExecutor | None = None
        try:
            self._create_schema()
        except sqlite3.OperationalError as exc:
            # A read-only file (or a full disk) with a schema already in it: serve
            # what can be read; every write answers 503 until the disk is back.
            if not self._has_schema():
                raise StoreError(f"cannot set up the database {self.path}: {exc}") from None
            log.error("database %s cannot be written (%s): running read-only", self.path, exc)
        # Opened after the schema exists: a second connection to watch for changes.
        self._watch = self._watcher()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        conn.row_factory = sqlite3.Row
        with suppress(sqlite3.OperationalError):  # read-only: reads work in the file's own mode
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _before_write(self) -> None:
        """Refuse to write to a file that is no longer the database's (see `FileHealth`);
        reopen the file after a write to it failed (it may be writable again)."""
        moved = self.health.moved()
        if moved is not None:
            # Another file at the path shares the open file's -wal and -shm names: only a
            # restart may switch to it. The same file put back clears this.
            if not self.health.error_moved:
                # Empty the -wal into the old file now, so that nothing of it is ever
                # applied to the file that is at the path now.
                with suppress(sqlite3.Error):
                    self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.health.report(f"{moved} (restart sysmenu to use a new one)", moved=True)
            raise sqlite3.OperationalError(self.health.error)
        if self.health.error_moved:
            self.health.report(None)  # the file is back
        if self.health.should_reopen() and not self._reopen():
            raise sqlite3.OperationalError(self.health.error or f"database {self.path} cannot be opened")

    def _reopen(self) -> bool:
        """Open the database file afresh (never create one)."""
        if not os.path.exists(self.path):
            return False
        # SQLite shares a file's -shm mapping among the connections of a process: one
        # opened read-only keeps it read-only until all are closed, so close them first.
        self.conn.close()
        watching = hasattr(self, "_watch")
        if watching:
            self._watch.close()
        try:
            self.conn = self._connect()
            if watching:
                self._watch = self._watcher()
        except sqlite3.Error as exc:
            log.error("cannot open the database %s again: %s", self.path, exc)
            self.conn = sqlite3.connect(IN_MEMORY, check_same_thread=False)  # fails every query
            return False
        self.health.reopened()
        return True

    def _watcher(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0)

    def check_file(self) -> dict[str, object]:
        """Look at the file now (deleted? replaced? writable again?); its health."""
        with self._lock, suppress(sqlite3.Error):
            self._before_write()
        return self.health.status()

    def _create_schema(self) -> None:
        # executescript() would commit on its own; run the statements in our transaction.
        with self.transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table, column, declaration in _ADDED_COLUMNS:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            for name, perms in GROUPS.items():
                conn.execute(
                    "INSERT INTO groups(name, permissions) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                    (name, json.dumps(list(perms))),
                )

    def _has_schema(self) -> bool:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return tables >= _TABLES

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.check_file()  # a file replaced meanwhile must not get this one's -wal at close
        self._watch.close()
        self.conn.close()

    async def run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`fn(*args, **kwargs)` on the database thread; its result or its exception.

        A caller that is cancelled stops waiting; `fn` still runs to its end (a
        transaction is never cut in half)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sysmenu-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def data_version(self) -> int | None:
        """A number that changes whenever any connection (this process's too) committed
        a change; None when it cannot be read right now. Never waits."""
        try:
            version: int = self._watch.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return None
        return version

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it is written, or none of it."""
        with self._lock:
            self._before_write()
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                yield self.conn
                self.conn.execute("COMMIT")  # a full disk can fail here: roll back below
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    self.health.failed(exc)
                raise
            else:
                self.health.report(None)
