"""The audit log's chain: each row follows the one before; verify finds the first misfit."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmenu import audit


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    audit.ensure_schema(conn)
    yield conn
    conn.close()


def fill(db: sqlite3.Connection, count: int, start: float = 1000.0) -> None:
    for i in range(count):
        audit.append(db, "execute", f"user{i % 3}", "apikey", "127.0.0.1", {"run": i}, ts=start + i)


def test_a_fresh_chain_verifies(db: sqlite3.Connection) -> None:
    fill(db, 5)
    verdict = audit.verify(db)
    assert verdict.ok and verdict.rows == 5 and (verdict.first, verdict.last) == (1, 5)
    rows = db.execute("SELECT prev, hash FROM audit ORDER BY id").fetchall()
    assert rows[0][0] == audit.GENESIS
    assert all(rows[i][0] == rows[i - 1][1] for i in range(1, 5))


def test_empty_log_verifies(db: sqlite3.Connection) -> None:
    assert audit.verify(db).ok and audit.verify(db).rows == 0


def test_an_edited_row_is_found(db: sqlite3.Connection) -> None:
    fill(db, 5)
    db.execute("UPDATE audit SET user='mallory' WHERE id=3")
    broken = audit.verify(db).broken
    assert broken is not None and broken.row == 3 and "changed" in broken.reason


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next(db: sqlite3.Connection) -> None:
    fill(db, 5)
    row = db.execute(
        "SELECT id, ts, event, user, auth, client, detail, prev FROM audit WHERE id=3"
    ).fetchone()
    forged = audit.row_hash(row[0], row[1], row[2], "mallory", row[4], row[5], row[6], row[7])
    db.execute("UPDATE audit SET user='mallory', hash=? WHERE id=3", (forged,))
    broken = audit.verify(db).broken
    assert broken is not None and broken.row == 4 and "does not follow row 3" in broken.reason


def test_a_deleted_row_is_found(db: sqlite3.Connection) -> None:
    fill(db, 5)
    db.execute("DELETE FROM audit WHERE id=2")
    broken = audit.verify(db).broken
    assert broken is not None and broken.row == 3


def test_a_deleted_first_row_is_found(db: sqlite3.Connection) -> None:
    fill(db, 5)
    db.execute("DELETE FROM audit WHERE id=1")
    broken = audit.verify(db).broken
    assert broken is not None and broken.row == 2 and "start" in broken.reason


def test_an_inserted_row_is_found(db: sqlite3.Connection) -> None:
    fill(db, 5)
    db.execute("UPDATE audit SET id=id+100 WHERE id>=3")
    db.execute("UPDATE audit SET id=id-99 WHERE id>=100")
    prev = db.execute("SELECT hash FROM audit WHERE id=2").fetchone()[0]
    forged = audit.row_hash(3, 1002.5, "login", "mallory", "password", "10.0.0.9", "{}", prev)
    db.execute(
        "INSERT INTO audit(id, ts, event, user, auth, client, detail, prev, hash) "
        "VALUES (3, 1002.5, 'login', 'mallory', 'password', '10.0.0.9', '{}', ?, ?)",
        (prev, forged),
    )
    broken = audit.verify(db).broken
    # row 3 fits itself and its predecessor; the row after it does not follow it
    assert broken is not None and broken.row == 4


def test_a_row_without_hash_is_found(db: sqlite3.Connection) -> None:
    fill(db, 2)
    db.execute("INSERT INTO audit(id, ts, event, detail) VALUES (3, 1.0, 'login', '{}')")
    broken = audit.verify(db).broken
    assert broken is not None and broken.row == 3


def test_an_old_table_gets_the_chain_columns(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.execute(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, ts REAL NOT NULL, event TEXT NOT NULL, user TEXT, "
        "auth TEXT, client TEXT, detail TEXT NOT NULL DEFAULT '{}')"
    )
    audit.ensure_schema(conn)
    audit.append(conn, "login", "a", "password", None, {})
    assert audit.verify(conn).ok
    conn.close()


def test_query_filters(db: sqlite3.Connection) -> None:
    fill(db, 10)
    audit.append(db, "login", "user0", "password", None, {}, ts=2000.0)
    assert [r["id"] for r in audit.query(db, limit=3)] == [11, 10, 9]
    assert [r["id"] for r in audit.query(db, since=1005, until=1008)] == [8, 7, 6]
    assert {r["user"] for r in audit.query(db, user="user1")} == {"user1"}
    assert [r["id"] for r in audit.query(db, events=["login"])] == [11]
    assert [r["id"] for r in audit.query(db, before=3)] == [2, 1]
    row = audit.query(db, limit=1, events=["execute"])[0]
    assert row["detail"] == {"run": 9} and len(row["hash"]) == 64


def test_prune_keeps_a_verifiable_chain(db: sqlite3.Connection) -> None:
    fill(db, 30)
    total = 0
    while deleted := audit.prune_batch(db, None, keep=10, batch=7):
        total += deleted
    assert total == 20
    events = [r["event"] for r in audit.query(db, limit=100)]
    assert events.count("execute") == 10 and events[0] == audit.PRUNED
    assert audit.verify(db).ok
    # cutting the start by hand is not a prune
    first = db.execute("SELECT min(id) FROM audit").fetchone()[0]
    db.execute("DELETE FROM audit WHERE id=?", (first,))
    assert not audit.verify(db).ok


def test_prune_by_age(db: sqlite3.Connection) -> None:
    fill(db, 10, start=1000.0)
    assert audit.prune_batch(db, 1005.0, keep=None) == 5
    assert audit.prune_batch(db, 1005.0, keep=None) == 0
    kept = [r["detail"] for r in audit.query(db, events=["execute"])]
    assert [d["run"] for d in kept] == [9, 8, 7, 6, 5]
    pruned = audit.query(db, events=[audit.PRUNED])[0]["detail"]
    assert pruned["rows"] == 5 and pruned["upto"] == 5
    assert audit.verify(db).ok


def test_pruning_everything_leaves_prune_records_that_verify(db: sqlite3.Connection) -> None:
    fill(db, 3)
    rounds = 0
    while audit.prune_batch(db, 1e12, keep=None):
        rounds += 1
    assert rounds == 2  # ends: prune records alone are not pruned again
    assert audit.verify(db).ok
    details = [
        json.loads(d) for (d,) in db.execute("SELECT detail FROM audit WHERE event=?", (audit.PRUNED,))
    ]
    assert [d["upto"] for d in details] == [2, 3]
