"""The record of runs: one row per run, written before its process starts and
finished in one transaction."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping

from .database import Database
from .models import RunRecord, Who

# The columns of a listing: everything but the output and the private columns.
_LISTED = (
    "id, source, action, name, user, auth, client, started, ended, duration, "
    "state, returncode, signal, stdout_dropped, stderr_dropped, arguments"
)


def _record(row: sqlite3.Row) -> RunRecord:
    fields = dict(row)
    if fields.get("arguments") is not None:
        fields["arguments"] = json.loads(fields["arguments"])
    if fields.get("leftovers") is not None:
        fields["leftovers"] = json.loads(fields["leftovers"])
    return RunRecord(**fields)


MAX_RUNS_PAGE = 200  # runs one page of GET /api/runs may hold


class RunLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(
        self,
        source: str,
        action: str,
        name: str,
        who: Who,
        idempotency_key: str | None = None,
        arguments: tuple[Mapping[str, object], str] | None = None,
    ) -> int:
        """Record a run before its process starts; return its id. `arguments`: the
        values as shown (secrets masked) and the digest of all of them."""
        shown = json.dumps(arguments[0], ensure_ascii=False) if arguments else None
        fingerprint = arguments[1] if arguments else None
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs(source, action, name, user, auth, client, started, state, "
                "idempotency_key, arguments, arguments_digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (
                    source,
                    action,
                    name,
                    who.user,
                    who.auth,
                    who.client,
                    time.time(),
                    idempotency_key,
                    shown,
                    fingerprint,
                ),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def set_process(self, run_id: int, pid: int, pid_start: str | None) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE runs SET pid=?, pid_start=? WHERE id=?", (pid, pid_start, run_id))

    def finish(self, record: RunRecord) -> None:
        """Write a run's end (state, times, exit, output), all of it in one transaction."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE runs SET state=?, ended=?, duration=?, returncode=?, signal=?, stdout=?, "
                "stderr=?, stdout_dropped=?, stderr_dropped=?, leftovers=? WHERE id=?",
                (
                    record.state,
                    record.ended,
                    record.duration,
                    record.returncode,
                    record.signal,
                    record.stdout or "",
                    record.stderr or "",
                    record.stdout_dropped,
                    record.stderr_dropped,
                    json.dumps(record.leftovers or []),
                    record.id,
                ),
            )

    def running(self) -> list[RunRecord]:
        """Runs recorded as running (at start-up: those a dead server left). A read: it
        works on a store that cannot be written."""
        return [_record(r) for r in self.db.conn.execute("SELECT * FROM runs WHERE state='running'")]

    def interrupt_running(self, ids: list[int] | None = None) -> list[RunRecord]:
        """Mark runs left `running` by a dead server (all, or those of `ids`) as
        `interrupted`; return them."""
        only = "" if ids is None else f" AND id IN ({','.join(str(int(i)) for i in ids)})"
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT * FROM runs WHERE state='running'" + only).fetchall()
            now = time.time()
            conn.execute(
                "UPDATE runs SET state='interrupted', ended=?, duration=? - started WHERE state='running'"
                + only,
                (now, now),
            )
        return [_record(r) for r in rows]

    def get(self, run_id: int) -> RunRecord | None:
        row = self.db.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return _record(row) if row else None

    def find_idempotent(self, user: str | None, key: str) -> RunRecord | None:
        row = self.db.conn.execute(
            "SELECT * FROM runs WHERE user IS ? AND idempotency_key=?", (user, key)
        ).fetchone()
        return _record(row) if row else None

    def list(
        self,
        *,
        source: str | None = None,
        action: str | None = None,
        state: str | None = None,
        before: int | None = None,
        limit: int = 50,
        since: float | None = None,
        until: float | None = None,
        only: Iterable[tuple[str, str]] | None = None,
    ) -> list[RunRecord]:
        """Runs newest first, without their output; page with `before` (an id). `since`
        and `until` bound the start time; `only` keeps runs of those (source, action)."""
        where: list[str] = []
        args: list[str | int | float] = []
        for column, value in (("source", source), ("action", action), ("state", state)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        for condition, bound in (("id<?", before), ("started>=?", since), ("started<?", until)):
            if bound is not None:
                where.append(condition)
                args.append(bound)
        if only is not None:
            pairs = sorted(set(only))
            where.append("(" + (" OR ".join("(source=? AND action=?)" for _ in pairs) or "0") + ")")
            args.extend(x for pair in pairs for x in pair)
        sql = f"SELECT {_LISTED} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        return [_record(r) for r in self.db.conn.execute(sql, (*args, limit))]
