"""Retention: old runs and audit rows pruned in batches; running runs never."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from sysmenu import audit
from sysmenu.retention import prune
from sysmenu.settings import Retention
from sysmenu.store import Store
from tests.conftest import Env


def fresh_db(path: Path) -> None:
    Store(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    audit.ensure_schema(conn)
    conn.close()


def make_runs(path: Path, count: int, age_days: float = 0, state: str = "ok") -> None:
    conn = sqlite3.connect(path)  # one transaction for all of them
    started = time.time() - age_days * 86400
    conn.executemany(
        "INSERT INTO runs(source, action, name, started, state) VALUES ('custom', 'x', 'X', ?, ?)",
        [(started + i * 0.001, state) for i in range(count)],
    )
    conn.commit()
    conn.close()


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    found = dict(conn.execute("SELECT state, count(*) FROM runs GROUP BY state").fetchall())
    conn.close()
    return found


def test_runs_beyond_the_count_go_running_ones_stay(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    fresh_db(db)
    make_runs(db, 3, state="running")
    make_runs(db, 500)
    pruned = prune(str(db), Retention(None, 100), Retention(None, None), batch=64, pause=0)
    assert pruned.runs == 400
    assert counts(db) == {"ok": 100, "running": 3}
    conn = sqlite3.connect(db)
    newest = conn.execute("SELECT min(id) FROM runs WHERE state='ok'").fetchone()[0]
    assert newest == 404  # the newest 100 are kept (ids 4..503)
    assert audit.verify(conn).ok
    (detail,) = conn.execute("SELECT detail FROM audit WHERE event='runs-pruned'").fetchone()
    assert '"runs": 400' in detail
    conn.close()


def test_runs_older_than_days_go(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    fresh_db(db)
    make_runs(db, 50, age_days=40)
    make_runs(db, 20, age_days=1)
    assert prune(str(db), Retention(30, None), Retention(None, None), pause=0).runs == 50
    assert counts(db) == {"ok": 20}
    assert prune(str(db), Retention(30, None), Retention(None, None), pause=0).runs == 0


def test_audit_beyond_count_and_age_goes_and_still_verifies(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = Store(db)
    conn = sqlite3.connect(db, isolation_level=None)
    audit.ensure_schema(conn)
    old = time.time() - 10 * 86400
    conn.execute("BEGIN")
    for i in range(300):
        audit.append(conn, "login", f"u{i}", "password", None, {}, ts=old + i)
    for i in range(50):
        audit.append(conn, "login", f"new{i}", "password", None, {})
    conn.execute("COMMIT")
    pruned = prune(str(db), Retention(None, None), Retention(5, None), audit_batch=64, pause=0)
    assert pruned.audit == 300
    assert {r["user"] for r in audit.query(conn, events=["login"], limit=1000)} == {
        f"new{i}" for i in range(50)
    }
    assert audit.verify(conn).ok
    assert prune(str(db), Retention(None, None), Retention(None, 20), pause=0).audit == 30
    assert len(audit.query(conn, events=["login"], limit=1000)) == 20
    assert audit.verify(conn).ok
    conn.close()
    store.close()


@pytest.mark.anyio
async def test_pruning_under_load_fails_no_request(env: Env) -> None:
    """A big prune on its worker thread while requests keep coming: none fails, and
    it ends with what it should keep."""
    db = Path(env.store.db.path)
    make_runs(db, 5000)
    # 4500 to go in 3 batches, each followed by production's pause (longer batches than
    # production's 50 runs hold the lock longer: harder on the requests, not easier).
    pruning = asyncio.ensure_future(
        asyncio.to_thread(prune, str(db), Retention(None, 500), Retention(None, None), 1500)
    )
    answers: list[int] = []
    probe = sqlite3.connect(db)  # a reader: never in the way of the writers

    def first_runs_left() -> int:
        return int(probe.execute("SELECT count(*) FROM runs WHERE id <= 5000").fetchone()[0])

    # Requests while the prune runs, until it has gone through the first 4500 (then it
    # only follows the runs these requests add: they would keep it going for ever).
    while (not pruning.done() and len(answers) < 1000 and first_runs_left() > 500) or len(answers) < 20:
        r = await env.client.get("/api/runs", params={"limit": 5}, headers=env.auth())
        answers.append(r.status_code)
        r = await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
        answers.append(r.status_code)
    probe.close()
    pruned = await pruning
    assert set(answers) == {200, 204}, [a for a in answers if a not in (200, 204)]
    # the newest 500 finished runs stay, what ran during the prune among them (the
    # server's own hourly pruner may have taken part: it keeps more)
    assert pruned.runs > 0
    prune(str(db), Retention(None, 500), Retention(None, None), pause=0)  # what ended after its last batch
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM runs WHERE state != 'running'").fetchone()[0] == 500
    newest = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
    assert newest > 5000  # runs started during the prune are kept
    assert audit.verify(conn).ok
    conn.close()
