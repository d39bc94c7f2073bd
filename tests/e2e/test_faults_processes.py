"""Fault injection on a real server, processes: kill -9 in bursts, escapees, daemons, queues, stops.

Each test does to `sysmenu serve` what an operator's bad day does, and counts:
rows started against rows found, processes left behind, requests answered.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, running_server, start_process, wait_ready
from tests.proctable import processes_with, wait_until_gone

pytestmark = pytest.mark.e2e

CONFIG = """\
sysmenu:
  kill_grace: 0.5
system:
  actions:
    - action: burst
      command: "setsid sleep {m} & (sleep {m} &); sleep {m}"
      concurrency: 100
    - action: escape-setsid
      command: "setsid sh -c 'touch {tmp}/ready-setsid; exec sleep {m}' & sleep {m}"
    - action: escape-fork
      command: "(setsid sh -c \\"touch {tmp}/ready-fork; exec sleep {m}\\" &); sleep {m}"
    - action: escape-timeout
      command: "setsid sleep {m} & (sleep {m} &); sleep {m}"
      timeout: 1
    - action: daemon
      command: "sleep {d} > /dev/null 2>&1 & echo started"
    - action: daemon-holding-pipes
      command: "sleep {d} & echo started"
    - action: daemon-killed
      command: "sleep {m} & echo started"
      leftovers: kill
    - action: gated
      command: "while [ ! -e {tmp}/gate ]; do sleep 0.01; done; echo passed"
      queue: true
    - action: hello
      command: "echo hello"
"""


def markers(tmp: Path) -> tuple[str, str]:
    """Sleep durations unique to this test: one for processes that must end, one for daemons."""
    crc = zlib.crc32(str(tmp).encode())
    return f"272.{crc}", f"273.{crc}"


def config_for(tmp: Path) -> str:
    m, d = markers(tmp)
    return CONFIG.format(m=m, d=d, tmp=tmp)


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll (bounded) until `predicate()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def restart(server: Server, log: Path | None = None) -> Any:
    """Start the server again on the same data (after a stop or a kill -9)."""
    log = log or server.log.with_name("restart.log")
    process = start_process(server.data_dir, server.config, server.port, log)
    wait_ready(server.url, process, log, server.key)
    return process


def stop(process: Any) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(10)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_a_random_moment_of_a_burst(tmp_path: Path, seed: int) -> None:
    """Every answered start has a row, no row stays running, no process (escapees too) is left."""
    rng = random.Random(seed)
    total, kill_after = 24, rng.randrange(1, 20)
    m, _ = markers(tmp_path)
    with running_server(tmp_path, config_for(tmp_path)) as server:
        answered: list[int] = []
        lock, enough = threading.Lock(), threading.Event()

        def post(_: int) -> None:
            try:
                r = httpx.post(
                    f"{server.url}/api/system/commands/custom/burst",
                    headers={"X-Api-Key": server.key, "Prefer": "respond-async"},
                    timeout=10,
                )
            except httpx.TransportError:
                return  # the server died under it: may or may not have a row
            assert r.status_code == 202, r.text
            with lock:
                answered.append(r.json()["id"])
                if len(answered) >= kill_after:
                    enough.set()

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(post, i) for i in range(total)]
            assert enough.wait(30)
            server.process.kill()
            for future in futures:
                future.result()
        server.process.wait(10)
        process = restart(server)
        try:
            with server.client() as http:
                rows = http.get("/api/runs", params={"action": "burst", "limit": 200}).json()["runs"]
            assert set(answered) <= {row["id"] for row in rows}
            assert len(rows) <= total
            assert [row for row in rows if row["state"] == "running"] == []
            assert wait_until_gone(m, 10) == []
        finally:
            stop(process)


@pytest.mark.parametrize("action", ["escape-setsid", "escape-fork"])
def test_escapees_of_a_killed_run_are_ended(tmp_path: Path, action: str) -> None:
    m, _ = markers(tmp_path)
    ready = tmp_path / ("ready-setsid" if action == "escape-setsid" else "ready-fork")
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        r = http.post(f"/api/system/commands/custom/{action}", headers={"Prefer": "respond-async"})
        run_id = r.json()["id"]
        wait_for(ready.exists, what="the escapee")
        assert http.post(f"/api/runs/{run_id}/kill").status_code == 202
        run = wait_for(lambda: (x := http.get(f"/api/runs/{run_id}").json())["state"] != "running" and x)
        assert run["state"] == "killed"
        assert wait_until_gone(m) == []


def test_escapees_of_a_timed_out_run_are_ended(tmp_path: Path) -> None:
    m, _ = markers(tmp_path)
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        r = http.post("/api/system/commands/custom/escape-timeout")
        assert r.status_code == 500 and "timed out" in r.json()["error"]
        assert wait_until_gone(m) == []


def test_escapees_of_runs_interrupted_by_a_stop_are_ended(tmp_path: Path) -> None:
    m, _ = markers(tmp_path)
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        r = http.post("/api/system/commands/custom/escape-setsid", headers={"Prefer": "respond-async"})
        wait_for((tmp_path / "ready-setsid").exists, what="the escapee")
        assert server.stop() in (0, -signal.SIGTERM)
        assert wait_until_gone(m) == []
        process = restart(server)
        try:
            assert http.get(f"/api/runs/{r.json()['id']}").json()["state"] == "interrupted"
        finally:
            stop(process)


def test_background_daemon_of_a_normal_run_keeps_running_and_is_recorded(tmp_path: Path) -> None:
    """As OctoPrint and a shell leave `streamer &`; a later server stop does not kill it either."""
    m, d = markers(tmp_path)
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        try:
            for action in ("daemon", "daemon-holding-pipes"):
                # holding the pipes or not, the answer does not wait for it (it sleeps for minutes)
                assert http.post(f"/api/system/commands/custom/{action}").status_code == 204
                (run,) = http.get("/api/runs", params={"action": action}).json()["runs"]
                left = http.get(f"/api/runs/{run['id']}").json()["leftovers"]
                assert [p["command"] for p in left] == [f"sleep {d}"]
                assert not left[0]["killed"]
                assert left[0]["pid"] in processes_with(d)
            assert http.post("/api/system/commands/custom/daemon-killed").status_code == 204
            (run,) = http.get("/api/runs", params={"action": "daemon-killed"}).json()["runs"]
            assert [p["killed"] for p in http.get(f"/api/runs/{run['id']}").json()["leftovers"]] == [True]
            assert wait_until_gone(m) == []
            assert server.stop() in (0, -signal.SIGTERM)
            assert len(processes_with(d)) == 2  # still running after the server stopped
        finally:
            for pid in processes_with(d):
                os.kill(pid, signal.SIGKILL)
    assert wait_until_gone(d) == []


def test_parallel_requests_with_one_key_to_a_queued_command(tmp_path: Path) -> None:
    """Exactly one run for the key, every request answered with its outcome."""
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        blocker = http.post("/api/system/commands/custom/gated", headers={"Prefer": "respond-async"})
        assert blocker.status_code == 202

        def post(_: int) -> int:
            with server.client() as client:
                r = client.post("/api/system/commands/custom/gated", headers={"Idempotency-Key": "k1"})
                return r.status_code

        with ThreadPoolExecutor(10) as pool:
            answers = [pool.submit(post, i) for i in range(10)]
            wait_for(lambda: http.get("/api/status").json()["waiting"], what="a waiting request")
            (tmp_path / "gate").touch()
            codes = [a.result(timeout=30) for a in answers]
        assert codes == [204] * 10
        runs = http.get("/api/runs", params={"action": "gated"}).json()["runs"]
        assert len(runs) == 2 and all(run["state"] == "ok" for run in runs)
        r = http.post("/api/system/commands/custom/hello", headers={"Idempotency-Key": "k1"})
        assert r.status_code == 422 and "custom:gated" in r.json()["error"]


def test_queued_request_whose_client_left_never_runs(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        blocker = http.post("/api/system/commands/custom/gated", headers={"Prefer": "respond-async"})
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                f"POST /api/system/commands/custom/gated HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"X-Api-Key: {server.key}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            wait_for(lambda: http.get("/api/status").json()["waiting"], what="the request to queue")
        wait_for(lambda: "not run: the client left" in server.output(), what="the drop")
        assert http.get("/api/status").json()["waiting"] == {}
        (tmp_path / "gate").touch()
        wait_for(lambda: http.get(f"/api/runs/{blocker.json()['id']}").json()["state"] == "ok")
        assert http.post("/api/system/commands/custom/gated").status_code == 204
        runs = http.get("/api/runs", params={"action": "gated"}).json()["runs"]
        assert len(runs) == 2  # the blocker and the last request; never the one whose client left


def test_stop_with_queued_waiters_answers_each_at_once(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        blocker = http.post("/api/system/commands/custom/gated", headers={"Prefer": "respond-async"})

        def post(_: int) -> httpx.Response:
            with server.client() as client:
                return client.post("/api/system/commands/custom/gated")

        with ThreadPoolExecutor(4) as pool:
            answers = [pool.submit(post, i) for i in range(4)]
            wait_for(
                lambda: http.get("/api/status").json()["waiting"] == {"custom:gated": 4}, what="4 waiting"
            )
            assert server.stop() in (0, -signal.SIGTERM)  # bounded: raises if the stop hangs
            responses = [a.result(timeout=10) for a in answers]
        assert [r.status_code for r in responses] == [503] * 4
        assert all("stopping" in r.json()["error"] for r in responses)
        output = server.output()
        assert "Traceback" not in output and "CancelledError" not in output
        process = restart(server)
        try:
            assert http.get(f"/api/runs/{blocker.json()['id']}").json()["state"] == "interrupted"
            assert len(http.get("/api/runs", params={"action": "gated"}).json()["runs"]) == 1
        finally:
            stop(process)


def test_sigint_is_a_clean_stop(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server:
        assert server.stop(signal.SIGINT) == 0
        assert "Aborted" not in server.output()
        assert "Traceback" not in server.output()
