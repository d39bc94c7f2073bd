"""The audit log: what happened, by whom, readable, and hash-chained.

Every row carries ``prev``, the SHA-256 of the row before it, and ``hash``, the
SHA-256 of its own fields and ``prev``. Changing a row breaks its own hash;
deleting one breaks the ``prev`` of the next; inserting one breaks the ``prev``
of the row after it. `verify` walks the chain and names the first row that does
not fit. Pruning old rows records, as a new row, the hash the oldest kept row
follows, so that a pruned start is told apart from a cut one.

Functions here take an open `sqlite3.Connection`; writers call them inside their
own transaction (``BEGIN IMMEDIATE``), which also orders concurrent writers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from .models import Who

if TYPE_CHECKING:
    from .database import Database

log = logging.getLogger("sysmenu.store")
NOBODY = Who()

GENESIS = "0" * 64
COLUMNS = ("id", "ts", "event", "user", "auth", "client", "detail", "prev", "hash")
PRUNED = "audit-pruned"
MAX_AUDIT_PAGE = 500  # entries one page of GET /api/audit may hold

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    event TEXT NOT NULL,
    user TEXT,
    auth TEXT,
    client TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    prev TEXT,
    hash TEXT
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
"""


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the table, or add the chain's columns to one an older sysmenu made."""
    for statement in SCHEMA.split(";"):
        if statement.strip() and "INDEX" not in statement:
            db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(audit)")}
    for column in ("prev", "hash"):
        if column not in columns:
            db.execute(f"ALTER TABLE audit ADD COLUMN {column} TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts)")


def row_hash(
    row_id: int,
    ts: float,
    event: str,
    user: str | None,
    auth: str | None,
    client: str | None,
    detail: str,
    prev: str,
) -> str:
    """The SHA-256 of one row: its fields in a fixed JSON form (floats in their shortest exact form)."""
    text = json.dumps(
        [row_id, ts, event, user, auth, client, detail, prev], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _last(db: sqlite3.Connection) -> tuple[int, str]:
    row = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS
    return int(row[0]), row[1] or GENESIS


def append(
    db: sqlite3.Connection,
    event: str,
    user: str | None,
    auth: str | None,
    client: str | None,
    detail: dict[str, Any],
    ts: float | None = None,
) -> int:
    """Append one row after the last (call inside a write transaction); return its id."""
    ts = time.time() if ts is None else ts
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    last_id, prev = _last(db)
    row_id = last_id + 1
    digest = row_hash(row_id, ts, event, user, auth, client, text, prev)
    db.execute(
        "INSERT INTO audit(id, ts, event, user, auth, client, detail, prev, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, ts, event, user, auth, client, text, prev, digest),
    )
    return row_id


@dataclass(frozen=True, slots=True)
class Break:
    """The first row that does not fit the chain, and why."""

    row: int
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: int
    first: int | None
    last: int | None
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify(db: sqlite3.Connection) -> Verdict:
    """Walk the whole chain, oldest first (in bounded batches); report the first misfit."""
    count, first, previous, after = 0, None, None, -1
    while True:
        batch = db.execute(
            "SELECT id, ts, event, user, auth, client, detail, prev, hash FROM audit "
            "WHERE id > ? ORDER BY id LIMIT 1000",
            (after,),
        ).fetchall()
        if not batch:
            return Verdict(count, first, after if count else None, None)
        for row_id, ts, event, user, auth, client, detail, prev, digest in batch:
            count += 1
            if first is None:
                first = row_id
            if prev is None or digest is None:
                return Verdict(
                    count, first, row_id, Break(row_id, "has no hash (written before the chain existed)")
                )
            if row_hash(row_id, ts, event, user, auth, client, detail, prev) != digest:
                return Verdict(count, first, row_id, Break(row_id, "was changed after it was written"))
            if previous is not None and prev != previous:
                return Verdict(
                    count,
                    first,
                    row_id,
                    Break(
                        row_id,
                        f"does not follow row {after}: a row was removed, inserted or changed before it",
                    ),
                )
            if previous is None and first == row_id and not _starts_well(db, row_id, prev):
                return Verdict(
                    count,
                    first,
                    row_id,
                    Break(row_id, "is not the start of the log and no prune explains it"),
                )
            previous, after = digest, row_id


def _starts_well(db: sqlite3.Connection, row_id: int, prev: str) -> bool:
    """The oldest row starts the chain, or follows a hash an ``audit-pruned`` row vouches for."""
    if prev == GENESIS:
        return True
    for (detail,) in db.execute("SELECT detail FROM audit WHERE event = ? ORDER BY id", (PRUNED,)):
        try:
            if json.loads(detail).get("oldest_follows") == prev:
                return True
        except (ValueError, AttributeError):
            continue
    return False


class Entry(TypedDict):
    """One row as `query` reads it: `detail` decoded (as stored, when it is no JSON)."""

    id: int
    ts: float
    event: str
    user: str | None
    auth: str | None
    client: str | None
    detail: object
    hash: str | None


class Filters(TypedDict, total=False):
    """What `query` picks: at or after `since`, before `until`, by `user`, of `events`,
    older than the entry `before` (an id: the page before it), `limit` entries at most."""

    since: float | None
    until: float | None
    user: str | None
    events: Sequence[str]
    before: int | None
    limit: int


def query(db: sqlite3.Connection, **filters: Unpack[Filters]) -> list[Entry]:
    """Rows newest first, filtered; `before` (an id) pages back."""
    since, until, user = filters.get("since"), filters.get("until"), filters.get("user")
    events, before = filters.get("events", ()), filters.get("before")
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if until is not None:
        where.append("ts < ?")
        args.append(until)
    if user is not None:
        where.append("user = ?")
        args.append(user)
    if events:
        where.append(f"event IN ({','.join('?' * len(events))})")
        args.extend(events)
    if before is not None:
        where.append("id < ?")
        args.append(before)
    sql = "SELECT id, ts, event, user, auth, client, detail, hash FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = []
    for row in db.execute(sql, (*args, filters.get("limit", 100))):
        detail = row[6]
        with contextlib.suppress(ValueError):  # an edited row is shown as it is; `verify` tells
            detail = json.loads(detail)
        rows.append(
            Entry(
                id=row[0],
                ts=row[1],
                event=row[2],
                user=row[3],
                auth=row[4],
                client=row[5],
                detail=detail,
                hash=row[7],
            )
        )
    return rows


def prune_batch(db: sqlite3.Connection, cutoff_ts: float | None, keep: int | None, batch: int = 500) -> int:
    """Delete up to `batch` of the oldest rows older than `cutoff_ts` or beyond the newest
    `keep`, and record that as an ``audit-pruned`` row
    naming the hash the oldest kept row follows (call inside a write transaction);
    return how many were deleted (0: nothing more to prune)."""
    last_id, _ = _last(db)
    limits = []
    if keep is not None:  # beyond the newest `keep` rows (prune records not counted)
        row = db.execute(
            "SELECT id FROM audit WHERE event != ? ORDER BY id DESC LIMIT 1 OFFSET ?", (PRUNED, keep)
        ).fetchone()
        limits.append(row[0] if row else 0)
    if cutoff_ts is not None:
        row = db.execute("SELECT max(id) FROM audit WHERE ts < ?", (cutoff_ts,)).fetchone()
        limits.append(row[0] or 0)
    upto = min(max(limits, default=0), last_id - 1)
    rows = db.execute(
        "SELECT id, event FROM audit WHERE id <= ? ORDER BY id LIMIT ?", (upto, batch)
    ).fetchall()
    if all(event == PRUNED for _, event in rows):
        return 0  # nothing but earlier prune records: pruning them would only write another
    cut = rows[-1][0]
    db.execute("DELETE FROM audit WHERE id <= ?", (cut,))
    oldest = db.execute("SELECT prev FROM audit ORDER BY id LIMIT 1").fetchone()
    append(db, PRUNED, None, None, None, {"rows": len(rows), "upto": cut, "oldest_follows": oldest[0]})
    return len(rows)


class AuditLog:
    """The audit log of one database: append (never raising), read, verify."""

    def __init__(self, db: Database) -> None:
        self.db = db
        try:
            with db.transaction() as conn:
                ensure_schema(conn)  # a table an older sysmenu made gets the chain's columns
        except sqlite3.Error as exc:  # read-only: `Database` says so; rows are then only read
            log.debug("audit schema not checked: %s", exc)

    def record(self, event: str, who: Who = NOBODY, **detail: object) -> None:
        """Append to the audit log; a failing disk is logged, never raised (the action
        it records has happened already)."""
        try:
            with self.db.transaction() as conn:
                append(conn, event, who.user, who.auth, who.client, dict(detail))
        except sqlite3.Error as exc:
            log.error("cannot write the audit log (%s %s by %s): %s", event, detail, who.user, exc)

    def query(self, **filters: Unpack[Filters]) -> list[Entry]:
        """Entries newest first, filtered (see `query`)."""
        return query(self.db.conn, **filters)

    def list(self, limit: int = 100) -> list[Entry]:
        """The newest entries first, their detail decoded."""
        return self.query(limit=limit)

    def verify(self) -> Verdict:
        return verify(self.db.conn)
