"""Faults on a real server: read-only and full disks, a broken config, hostile commands."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import running_server, start_process, wait_ready
from tests.proctable import wait_until_gone

pytestmark = pytest.mark.e2e

CONFIG = """\
sysmenu:
  reload_interval: 0.2
  kill_grace: 0.5
system:
  actions:
    - action: hello
      name: Hello
      command: "echo hello"
    - action: stubborn
      name: Ignores SIGTERM
      command: "trap '' TERM; sleep {m}; echo survived"
      timeout: 0.5
    - action: forker
      name: Forks away and closes its pipes
      command: "(sleep {m} >/dev/null 2>&1 &) ; echo forked"
      leftovers: kill
    - action: stdin
      name: Never reads stdin
      command: "sleep 0.2; echo fine"
    - action: binary
      name: Not UTF-8
      command: "printf 'ok \\\\377\\\\376 end'"
    - action: slow
      name: Slow
      command: "sleep 1; echo slow-done"
"""


def marker_of(tmp: Path) -> str:
    return f"271.{zlib.crc32(str(tmp).encode())}"


@contextmanager
def small_mount(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=False)
    if result.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_hostile_commands(tmp_path: Path) -> None:
    m = marker_of(tmp_path)
    with running_server(tmp_path, CONFIG.format(m=m)) as server, server.client() as http:
        r = http.post("/api/system/commands/custom/stubborn")
        assert r.status_code == 500 and "timed out" in r.json()["error"]
        r = http.post("/api/system/commands/custom/forker")
        assert r.status_code == 204
        r = http.post("/api/system/commands/custom/stdin")
        assert r.status_code == 204
        r = http.post("/api/system/commands/custom/binary", headers={"Prefer": "respond-async"})
        run = http.get(r.headers["location"]).json()
        for _ in range(50):
            if run["state"] != "running":
                break
            time.sleep(0.1)
            run = http.get(r.headers["location"]).json()
        assert run["stdout"] == "ok \ufffd\ufffd end"
        assert wait_until_gone(m) == []


def test_client_disconnecting_mid_request_does_not_stop_the_run(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG.format(m=marker_of(tmp_path))) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                "POST /api/system/commands/custom/slow HTTP/1.1\r\nHost: localhost\r\n"
                f"X-Api-Key: {server.key}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            time.sleep(0.2)
        with server.client() as http:
            time.sleep(1.5)
            (run,) = http.get("/api/runs", params={"action": "slow"}).json()["runs"]
            assert run["state"] == "ok"
            assert http.get(f"/api/runs/{run['id']}").json()["stdout"] == "slow-done\n"
            assert http.get("/api/system/commands").status_code == 200


def test_broken_config_replacing_the_file_keeps_the_last_good(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG.format(m=marker_of(tmp_path))) as server, server.client() as http:
        broken = tmp_path / "broken.yaml"
        broken.write_text("system:\n  actions:\n    - action: x\n      concurrency: lots\n")
        broken.replace(server.config)
        for _ in range(50):
            status = http.get("/api/status").json()
            if status["config"]["error"]:
                break
            time.sleep(0.1)
        assert "line 4: system.actions.0.concurrency = 'lots'" in status["config"]["error"]
        assert http.post("/api/system/commands/custom/hello").status_code == 204
        assert "config change not applied" in server.output()
        good = tmp_path / "good.yaml"
        good.write_text("system:\n  actions:\n    - action: fresh\n      command: 'true'\n")
        good.replace(server.config)
        for _ in range(50):
            if http.post("/api/system/commands/custom/fresh").status_code == 204:
                break
            time.sleep(0.1)
        assert http.get("/api/status").json()["config"]["error"] is None
        assert http.post("/api/system/commands/custom/hello").status_code == 404


def test_read_only_database_refuses_to_run_unrecorded(tmp_path: Path) -> None:
    """The data dir on a read-only file system: what can be read is served, nothing runs unrecorded."""
    log = tmp_path / "ro.log"
    with (
        small_mount(tmp_path / "ro", "8m") as mnt,
        running_server(mnt, CONFIG.format(m=marker_of(tmp_path))) as server,
        server.client() as http,
    ):
        assert http.post("/api/system/commands/custom/hello").status_code == 204
        server.stop()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        process = start_process(server.data_dir, server.config, server.port, log)
        try:
            wait_ready(server.url, process, log, server.key)
            assert http.get("/api/system/commands").status_code == 200
            assert len(http.get("/api/runs").json()["runs"]) == 1
            r = http.post("/api/system/commands/custom/hello")
            assert r.status_code == 503
            assert "not run" in r.json()["error"]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(10)
    text = log.read_text()
    assert "running read-only" in text and "Traceback" not in text


def test_full_disk_refuses_to_run_unrecorded_and_recovers(tmp_path: Path) -> None:
    with (
        small_mount(tmp_path / "full", "2m") as mnt,
        running_server(mnt, CONFIG.format(m=marker_of(tmp_path))) as server,
        server.client() as http,
    ):
        assert http.post("/api/system/commands/custom/hello").status_code == 204
        filler = mnt / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
        codes = {http.post("/api/system/commands/custom/hello").status_code for _ in range(20)}
        assert codes <= {204, 503}
        assert 503 in codes
        r = http.post("/api/system/commands/custom/hello")
        assert r.status_code == 503 and "error" in r.json()
        assert http.get("/api/system/commands").status_code == 200
        filler.unlink()
        assert http.post("/api/system/commands/custom/hello").status_code == 204
        runs = http.get("/api/runs", params={"action": "hello"}).json()["runs"]
        assert all(run["state"] in ("ok", "running") for run in runs)
        assert runs[0]["state"] == "ok"
        assert "Traceback" not in server.output()


def test_server_answers_after_all_that(tmp_path: Path) -> None:
    with running_server(tmp_path, CONFIG.format(m=marker_of(tmp_path))) as server:
        r = httpx.get(f"{server.url}/api/version", headers={"X-Api-Key": server.key})
        assert r.status_code == 200
