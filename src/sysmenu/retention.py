"""Retention: old runs and audit rows pruned in the background (``sysmenu.keep_runs``,
``sysmenu.keep_audit``), so that history cannot fill an SD card.

Pruning runs on a worker thread with its own connection to the database file, in
small transactions (a few hundred rows each), so requests never wait behind it for
more than one small batch. Runs still running are never pruned. Each pass that
removes something says so in the audit log (``runs-pruned``, ``audit-pruned``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import audit
from .database import IN_MEMORY
from .settings import Retention

log = logging.getLogger("sysmenu.retention")

INTERVAL = 3600.0  # seconds between passes (the first comes soon after start-up)
FIRST_PASS = 30.0
# Rows deleted per transaction. The server's connection waits 1.5 s for a lock at most:
# a batch must take far less, also on an SD card (a run may hold 2 MB of output).
BATCH = 50
AUDIT_BATCH = 500  # audit rows are small
# Between two batches the lock is left free this long: a writer waiting on the server's
# connection (SQLite's busy handler retries at most every 100 ms) always gets its turn.
PAUSE = 0.12


@dataclass(frozen=True, slots=True)
class Pruned:
    runs: int
    audit: int


def _cutoff(keep: Retention, now: float) -> float | None:
    return None if keep.days is None else now - keep.days * 86400


def _runs_batch(conn: sqlite3.Connection, keep: Retention, now: float, batch: int) -> int:
    limits = []
    cutoff = _cutoff(keep, now)
    if cutoff is not None:
        row = conn.execute("SELECT max(id) FROM runs WHERE started < ?", (cutoff,)).fetchone()
        limits.append(row[0] or 0)
    if keep.count is not None:
        row = conn.execute(
            "SELECT id FROM runs WHERE state != 'running' ORDER BY id DESC LIMIT 1 OFFSET ?", (keep.count,)
        ).fetchone()
        limits.append(row[0] if row else 0)
    upto = max(limits, default=0)
    if not upto:
        return 0
    cur = conn.execute(
        "DELETE FROM runs WHERE id IN "
        "(SELECT id FROM runs WHERE id <= ? AND state != 'running' ORDER BY id LIMIT ?)",
        (upto, batch),
    )
    return cur.rowcount


def _in_transaction(conn: sqlite3.Connection, work: Callable[[], int]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = work()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done


def prune(
    path: str,
    keep_runs: Retention,
    keep_audit: Retention,
    batch: int = BATCH,
    pause: float = PAUSE,
    audit_batch: int = AUDIT_BATCH,
) -> Pruned:
    """One pass over the database file at `path` (blocking: run it on a worker thread)."""
    now = time.time()
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA synchronous=NORMAL")  # as the server's connection (WAL)
    try:
        runs = 0
        while deleted := _in_transaction(conn, lambda: _runs_batch(conn, keep_runs, now, batch)):
            runs += deleted
            time.sleep(pause)
        if runs:
            _in_transaction(
                conn,
                lambda: audit.append(
                    conn, "runs-pruned", None, None, None, {"runs": runs, **_keep(keep_runs)}
                ),
            )
        rows = 0
        cutoff = _cutoff(keep_audit, now)
        while deleted := _in_transaction(
            conn, lambda: audit.prune_batch(conn, cutoff, keep_audit.count, audit_batch)
        ):
            rows += deleted
            time.sleep(pause)
    finally:
        conn.close()
    return Pruned(runs, rows)


def _keep(keep: Retention) -> dict[str, float | int]:
    return {k: v for k, v in (("days", keep.days), ("count", keep.count)) if v is not None}


async def prune_forever(
    path: str, settings: Callable[[], tuple[Retention, Retention]], interval: float = INTERVAL
) -> None:
    """Prune every `interval` seconds with the settings in force (`settings()`), off the loop."""
    if path == IN_MEMORY:
        return  # no second connection can reach it; nothing lives long there anyway
    await asyncio.sleep(min(FIRST_PASS, interval))
    while True:
        keep_runs, keep_audit = settings()
        try:
            pruned = await asyncio.to_thread(prune, path, keep_runs, keep_audit)
        except sqlite3.Error as exc:  # a full or read-only disk: try again next time
            log.error("cannot prune history: %s", exc)
        else:
            if pruned.runs or pruned.audit:
                log.info("pruned %d runs and %d audit rows", pruned.runs, pruned.audit)
        await asyncio.sleep(interval)
