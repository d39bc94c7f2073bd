"""The real server: `sysmenu serve` on 127.0.0.1, driven over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import SYSMENU, free_port, running_server, start_process, wait_ready
from tests.proctable import wait_until_gone

pytestmark = pytest.mark.e2e

CONFIG = """\
server:
  commands:
    systemShutdownCommand: "touch {tmp}/shutdown-ran"
system:
  actions:
    - action: touch
      name: Touch a file
      command: "touch {tmp}/touched"
    - action: divider
    - action: fail
      name: Fail
      command: "echo bad >&2; exit 5"
    - action: count
      name: Count
      command: "for i in 1 2 3; do echo line $i; sleep 0.3; done"
    - action: long
      name: Long
      command: "sleep 314.{marker} | cat"
"""


def marker_of(tmp: Path) -> str:
    """A sleep duration unique to this test: finds its processes in the process table."""
    return f"314.{zlib.crc32(str(tmp).encode())}"


def config_for(tmp: Path) -> str:
    return CONFIG.format(tmp=tmp, marker=marker_of(tmp)[4:])


def first_start_key(data_dir: Path, log: Path) -> str:
    """The key a first start wrote to its private file (whose path the log names)."""
    path = data_dir / "first-start-credentials.txt"
    assert str(path) in log.read_text()
    return path.read_text().split("API key:")[1].split()[0]


def test_first_start_writes_credentials_to_a_private_file(tmp_path: Path) -> None:
    """Under a service manager stdout is the journal, readable by more than the service
    user: the password and key go to a 0600 file whose path is printed, never to stdout."""
    port = free_port()
    log = tmp_path / "log"
    config = tmp_path / "c.yaml"
    config.write_text("system:\n  actions:\n    - {action: a, command: 'true'}\n")
    process = start_process(tmp_path / "data", config, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        text = log.read_text()
        assert "API key:" not in text and "password:" not in text
        key = first_start_key(tmp_path / "data", log)
        credentials = tmp_path / "data" / "first-start-credentials.txt"
        assert credentials.stat().st_mode & 0o777 == 0o600
        assert f"http://127.0.0.1:{port}/" in text
        r = httpx.get(f"http://127.0.0.1:{port}/api/system/commands", headers={"X-Api-Key": key})
        assert r.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def test_first_start_on_a_terminal_prints_the_credentials(tmp_path: Path) -> None:
    import os
    import pty
    import select

    port = free_port()
    main, child = pty.openpty()
    process = subprocess.Popen(
        [SYSMENU, "--data-dir", str(tmp_path / "data"), "serve", "--port", str(port)],
        stdout=child,
        stderr=subprocess.DEVNULL,
    )
    os.close(child)
    try:
        text = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (b"API key:" in text and text.endswith(b"\n")):
            if select.select([main], [], [], 1.0)[0]:
                text += os.read(main, 4096)
        key = text.decode().split("API key:")[1].split()[0]
        assert not (tmp_path / "data" / "first-start-credentials.txt").exists()
        wait_ready(f"http://127.0.0.1:{port}", process, tmp_path / "unused", key)
        r = httpx.get(f"http://127.0.0.1:{port}/api/system/commands", headers={"X-Api-Key": key})
        assert r.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        os.close(main)


def test_demo_config_serves(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [SYSMENU, "--data-dir", str(tmp_path), "serve", "--port", str(port)], stdout=out, stderr=out
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        key = first_start_key(tmp_path, log)
        r = httpx.get(f"http://127.0.0.1:{port}/api/system/commands", headers={"X-Api-Key": key})
        assert [s["action"] for s in r.json()["custom"]][:2] == ["uptime", "disk"]
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/system/commands/core/shutdown", headers={"X-Api-Key": key}
        )
        assert r.status_code == 204
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def test_list_execute_and_fail_over_http(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        r = http.get("/api/system/commands")
        assert r.status_code == 200
        custom = r.json()["custom"]
        assert custom[0]["resource"] == f"{server.url}/api/system/commands/custom/touch"
        assert custom[1] == {
            "action": "divider",
            "source": "custom",
            "resource": f"{server.url}/api/system/commands/custom/divider",
        }
        assert http.post("/api/system/commands/custom/touch").status_code == 204
        assert (tmp_path / "touched").exists()
        r = http.post("/api/system/commands/custom/fail")
        assert r.status_code == 500 and "return code 5" in r.json()["error"] and "bad" in r.json()["error"]
        r = http.get(f"{server.url}//api/system/commands/custom")
        assert r.status_code == 200
        r = http.get("/api/system/commands/custom/")
        assert r.status_code == 404
        r = httpx.get(f"{server.url}/api/system/commands")
        assert r.status_code == 403 and "error" in r.json()


def test_live_output_over_sse(tmp_path: Path) -> None:
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        r = http.post("/api/system/commands/custom/count", headers={"Prefer": "respond-async"})
        assert r.status_code == 202
        location = r.headers["location"]
        seen: list[tuple[float, str]] = []
        start = time.monotonic()
        with http.stream("GET", f"{location}/events", timeout=10) as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if event == "output":
                        seen.append((time.monotonic() - start, data["text"]))
                    if event == "end":
                        assert data["state"] == "ok"
                        break
        assert "".join(t for _, t in seen) == "line 1\nline 2\nline 3\n"
        # live: the first line arrived well before the last was printed
        assert seen[0][0] < seen[-1][0]
        r = http.get(f"{location}/events")  # late joiner after the end: everything, then end
        assert "line 3" in r.text and "event: end" in r.text


def test_sigterm_kills_running_groups_and_marks_runs_interrupted(tmp_path: Path) -> None:
    marker = marker_of(tmp_path)
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        r = http.post("/api/system/commands/custom/long", headers={"Prefer": "respond-async"})
        run_id = r.json()["id"]
        ends: list[str] = []

        def follow() -> None:
            with server.client() as follower, follower.stream("GET", f"/api/runs/{run_id}/events") as stream:
                ends.extend(line for line in stream.iter_lines() if '"state"' in line)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        time.sleep(0.3)
        started = time.monotonic()
        # uvicorn re-raises the signal once shut down cleanly (systemd counts that as clean)
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.output()
        follower.join(5)
        assert not follower.is_alive(), "an event stream held the server stop"
        assert len(ends) == 1 and '"state": "interrupted"' in ends[0]
        assert time.monotonic() - started < 8
        assert wait_until_gone(marker) == []
        process = start_process(server.data_dir, server.config, server.port, server.log)
        try:
            wait_ready(server.url, process, server.log, server.key)
            run = http.get(f"/api/runs/{run_id}").json()
            assert run["state"] == "interrupted"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(10)


def test_kill_9_of_the_server_mid_run_then_restart(tmp_path: Path) -> None:
    marker = marker_of(tmp_path)
    with running_server(tmp_path, config_for(tmp_path)) as server, server.client() as http:
        r = http.post("/api/system/commands/custom/long", headers={"Prefer": "respond-async"})
        run_id = r.json()["id"]
        time.sleep(0.3)
        server.stop(signal.SIGKILL)
        process = start_process(server.data_dir, server.config, server.port, server.log)
        try:
            wait_ready(server.url, process, server.log, server.key)
            run = http.get(f"/api/runs/{run_id}").json()
            assert run["state"] == "interrupted"
            assert run["ended"] is not None
            # the orphaned group of the dead server was found and killed on restart
            assert wait_until_gone(marker) == []
            assert http.post("/api/system/commands/custom/touch").status_code == 204
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(10)
