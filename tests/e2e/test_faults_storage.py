"""Fault injection on a real server, storage and config: full, locked, deleted and read-only
databases, config files caught half-written."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import running_server
from tests.e2e.test_faults_processes import restart, stop, wait_for
from tests.proctable import processes_with, wait_until_gone

pytestmark = pytest.mark.e2e

CONFIG = """\
sysmenu:
  reload_interval: 0.2
  kill_grace: 0.5
system:
  actions:
    - action: hello
      command: "echo hello"
    - action: gated
      command: "while [ ! -e {gate} ]; do sleep 0.01; done; echo finished"
    - action: long
      command: "setsid sleep {m} & sleep {m}"
"""


def config_for(tmp: Path, gate: Path | None = None) -> str:
    return CONFIG.format(gate=gate or tmp / "gate", m=f"274.{zlib.crc32(str(tmp).encode())}")


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of its own (a full disk, a read-only one); skipped where
    this machine does not allow mounting one."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or result.returncode}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def run_of(http: httpx.Client, run_id: int) -> dict[str, object]:
    return dict(http.get(f"/api/runs/{run_id}").json())


def test_full_disk_keeps_a_run_end_and_writes_it_when_space_returns(tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # outside the full file system
    with (
        tmpfs(tmp_path / "full", "2m") as mnt,
        running_server(mnt, config_for(mnt, gate)) as server,
        server.client() as http,
    ):
        run_id = http.post("/api/system/commands/custom/gated", headers={"Prefer": "respond-async"}).json()[
            "id"
        ]
        filler = mnt / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
        # until the store refuses (SQLite may still have room in its -wal)
        wait_for(
            lambda: http.post("/api/system/commands/custom/hello").status_code == 503, what="a full store"
        )
        gate.touch()
        run = wait_for(lambda: (r := run_of(http, run_id))["state"] != "running" and r, what="the end")
        assert (run["state"], run["returncode"], run["stdout"]) == ("ok", 0, "finished\n")  # from memory
        assert "cannot be written" in str(http.get("/api/status").json()["database"]["error"])
        assert "kept until it can be" in server.output()
        filler.unlink()
        wait_for(lambda: http.get("/api/status").json()["database"]["error"] is None, what="recovery")
        wait_for(lambda: "written after all" in server.output(), what="the end written")
        assert server.stop() in (0, -signal.SIGTERM)
        process = restart(server)
        try:
            run = run_of(http, run_id)  # from the database now
            assert (run["state"], run["stdout"]) == ("ok", "finished\n")
            assert http.post("/api/system/commands/custom/hello").status_code == 204
        finally:
            stop(process)
        assert "Traceback" not in server.output()


def test_a_locked_database_delays_only_what_needs_it(tmp_path: Path) -> None:
    """Another process holds the write lock: run starts wait (and get 503 after the busy
    timeout), everything that needs no database keeps answering within 100 ms, and the run
    history (a read on the database thread) within the busy timeout."""
    release = tmp_path / "release"
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import os, sqlite3, sys, time\n"
                "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
                "while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n",
                str(server.data_dir / "sysmenu.db"),
                str(release),
            ],
            stdout=subprocess.PIPE,
            text=True,
        ) as holder:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            answers: list[int] = []

            def keep_starting() -> None:  # writes that wait for the lock, all along
                with server.client() as starter:
                    while not release.exists():
                        answers.append(starter.post("/api/system/commands/custom/hello").status_code)

            starter = threading.Thread(target=keep_starting)
            starter.start()
            try:
                times: list[float] = []
                reads: list[float] = []
                paths = ("/api/version", "/api/system/commands", "/api/status", "/api/runs")
                deadline = time.monotonic() + 20
                while not answers and time.monotonic() < deadline:  # until a start was refused
                    path = paths[len(times + reads) % len(paths)]
                    began = time.monotonic()
                    assert http.get(path).status_code == 200
                    (reads if path == "/api/runs" else times).append(time.monotonic() - began)
            finally:
                release.touch()
                starter.join(30)
                holder.wait(10)
        assert set(answers) <= {204, 503}
        assert 503 in answers  # the lock was held all along
        assert max(times) < 0.1, times
        assert max(reads) < 3.0, reads  # BUSY_TIMEOUT (1.5 s) and a margin


def test_config_truncated_then_written_in_two_steps_is_never_half_applied(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        before = http.get("/api/system/commands/custom").json()
        whole = config_for(tmp_path) + "    - action: added\n      command: 'true'\n"
        half = whole.index("    - action: gated")
        with server.config.open("w") as fh:  # truncated, open for writing
            fh.write(whole[:half])  # a valid config with one command
            fh.flush()
            status = wait_for(
                lambda: (s := http.get("/api/status").json())["config"]["error"] and s, what="the rejection"
            )
            assert "being written" in status["config"]["error"]
            assert http.get("/api/system/commands/custom").json() == before
            fh.write(whole[half:])
        wait_for(lambda: http.post("/api/system/commands/custom/added").status_code == 204, what="the reload")
        assert http.get("/api/status").json()["config"]["error"] is None
        server.config.write_text("")  # an empty file is no config without commands
        status = wait_for(lambda: (s := http.get("/api/status").json())["config"]["error"] and s)
        assert "empty" in status["config"]["error"]
        assert http.post("/api/system/commands/custom/added").status_code == 204
        assert "being written" in server.output() and "is empty" in server.output()


def test_restart_only_settings_are_shown_pending_and_data_dir_is_no_change(tmp_path: Path) -> None:
    """The server runs with --data-dir: reloads do not call that a change; a new port is pending."""
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        text = server.config.read_text().replace(
            "  reload_interval: 0.2\n", "  reload_interval: 0.2\n  port: 1\n"
        )
        new = tmp_path / "new.yaml"
        new.write_text(text)
        new.replace(server.config)
        status = wait_for(lambda: (s := http.get("/api/status").json())["config"]["pending_restart"] and s)
        assert status["config"]["pending_restart"] == {"port": 1}
        assert status["config"]["error"] is None
        output = server.output()
        assert "config reloaded" in output and "data_dir" not in output
        assert "port changed in the config: takes effect at the next start" in output


def test_deleted_database_is_refused_reported_and_never_replaced(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        db = server.data_dir / "sysmenu.db"
        assert http.post("/api/system/commands/custom/hello").status_code == 204
        os.link(db, tmp_path / "backup.db")
        db.unlink()
        r = http.post("/api/system/commands/custom/hello")
        assert r.status_code == 503 and "deleted" in r.json()["error"]
        assert len(http.get("/api/runs").json()["runs"]) == 1  # what can be read is served
        assert "was deleted" in http.get("/api/status").json()["database"]["error"]
        assert not db.exists()  # no new empty store under a running server
        assert "was deleted" in server.output()
        os.link(tmp_path / "backup.db", db)  # put back: writes work again, no restart
        assert http.post("/api/system/commands/custom/hello").status_code == 204
        assert http.get("/api/status").json()["database"]["error"] is None
        assert server.stop() in (0, -signal.SIGTERM)
        process = restart(server)
        try:  # the same users, keys and runs: nothing was lost, no new admin was made
            assert len(http.get("/api/runs").json()["runs"]) == 2
        finally:
            stop(process)


def test_read_only_database_recovers_without_restart_and_old_groups_die(tmp_path: Path) -> None:
    """kill -9 with a run going, restart on a read-only disk (recovery cannot write): the old
    run's processes still die; once writable, writes and the old run's row recover."""
    m = f"274.{zlib.crc32(str(tmp_path / 'ro').encode())}"
    with tmpfs(tmp_path / "ro", "8m") as mnt, running_server(mnt, config_for(mnt)) as server:
        with server.client() as http:
            run_id = http.post(
                "/api/system/commands/custom/long", headers={"Prefer": "respond-async"}
            ).json()["id"]
            wait_for(lambda: len(processes_with(m)) >= 2, what="the run's processes")
            server.stop(signal.SIGKILL)
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            process = restart(server, tmp_path / "ro.log")
            try:
                assert wait_until_gone(m) == []
                r = http.post("/api/system/commands/custom/hello")
                assert r.status_code == 503
                assert http.get("/api/status").json()["database"]["error"]
                subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
                wait_for(lambda: http.post("/api/system/commands/custom/hello").status_code == 204)
                assert http.get("/api/status").json()["database"]["error"] is None
                wait_for(lambda: run_of(http, run_id)["state"] == "interrupted", what="the old run's row")
            finally:
                stop(process)
        log = (tmp_path / "ro.log").read_text()
        assert "can be written again" in log and "Traceback" not in log


def test_a_database_that_is_no_database_is_never_written(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        db = server.data_dir / "sysmenu.db"
        junk = tmp_path / "junk"
        junk.write_bytes(b"not a database")
        junk.replace(db)
        r = http.post("/api/system/commands/custom/hello")
        assert r.status_code == 503 and "replaced" in r.json()["error"]
        assert db.read_bytes() == b"not a database"
        with pytest.raises(sqlite3.DatabaseError):
            sqlite3.connect(db).execute("SELECT * FROM runs")
