"""Socket activation end to end: systemd-socket-activate starts sysmenu on the first
connection, sysmenu exits when idle, the next connection starts it again and nothing
a client can see has changed. systemd's notify messages arrive on a test socket."""

from __future__ import annotations

import datetime
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.activation import ACTIVATE, Activator
from tests.e2e.server import STOP_TIMEOUT, SYSMENU, free_port, sysmenu

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("systemd-socket-activate") is None,
        reason="systemd-socket-activate is not installed (Debian package systemd; scripts/test installs it)",
    ),
]

IDLE_EXIT = 1.0
CONFIG = """\
system:
  actions:
    - action: hello
      name: Say hello
      command: echo hello
sysmenu:
  idle_exit: 1
"""
LINE = re.compile(r"^(\S+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): ")


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify"))
    receiver.settimeout(30)
    yield receiver
    receiver.close()


@pytest.fixture
def activator(tmp_path: Path, notify: socket.socket) -> Iterator[tuple[Activator, str]]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    sysmenu("user", "add", "admin", "--group", "admins", "--password", "admin-pw", data_dir=data)
    key = sysmenu("key", "create", "admin", data_dir=data).strip()
    argv = [SYSMENU, "--data-dir", str(data), "--config", str(config), "serve"]
    env = {"NOTIFY_SOCKET": notify.getsockname(), "WATCHDOG_USEC": "2000000"}
    act = Activator(argv, tmp_path / "server.log", env).start()
    try:
        yield act, key
    finally:
        act.stop()


def messages_until(receiver: socket.socket, last: str) -> list[str]:
    """Notify datagrams, one string each, up to the first that contains `last`."""
    got = []
    while not got or last not in got[-1]:
        got.append(receiver.recv(4096).decode())
    return got


def test_first_request_starts_it_idle_exit_stops_it_the_next_starts_it_again(
    activator: tuple[Activator, str], notify: socket.socket, tmp_path: Path
) -> None:
    act, key = activator
    headers = {"X-Api-Key": key}
    # bash execs systemd-socket-activate at once, but "at once" is later on a loaded machine
    deadline = time.monotonic() + 30
    while not act.waiting() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert act.waiting(), "systemd-socket-activate is not waiting on the socket"
    assert not act.server_running()  # only systemd-socket-activate waits on the socket

    with httpx.Client(base_url=act.url, headers=headers, timeout=30) as client:
        assert client.post("/api/system/commands/custom/hello").status_code == 204
        login = client.post("/api/login", json={"user": "admin", "pass": "admin-pw"})
        assert login.status_code == 200
        cookies = dict(login.cookies)
        for _ in range(3):  # wrong keys from this address, to be remembered
            assert client.get("/api/status", headers={"X-Api-Key": "wrong"}).status_code == 403
        served_by = act.process.pid
        last_request = time.monotonic()
    first = messages_until(notify, "STATUS=serving")
    assert first[0].startswith("READY=1\nSTATUS=serving on 127.0.0.1:")

    assert act.wait_exits(1, timeout=60), "sysmenu did not exit when idle"
    assert time.monotonic() - last_request >= IDLE_EXIT  # not before its time (no upper bound asserted)
    assert act.exits == [0]  # a clean exit: systemd starts it again, never counts a failure
    assert "STOPPING=1\nSTATUS=stopping" in messages_until(notify, "STOPPING=1")
    log = (tmp_path / "server.log").read_text()
    assert "idle for 1 s: exiting" in log

    with httpx.Client(base_url=act.url, timeout=30) as client:
        runs = client.get("/api/runs", headers=headers)  # a new process answers...
        assert runs.status_code == 200
        assert act.server_running() and act.process.pid != served_by
        assert [(r["action"], r["state"]) for r in runs.json()["runs"]] == [("hello", "ok")]  # ...what was
        # The session from before still works, and the wrong keys still count.
        client.cookies.update(cookies)
        assert client.get("/api/currentuser").json()["name"] == "admin"
        codes = [client.get("/api/status", headers={"X-Api-Key": "wrong"}).status_code for _ in range(8)]
        assert codes == [403] * 7 + [429]
    assert messages_until(notify, "READY=1")[-1].startswith("READY=1")

    # Every line sysmenu logged has an ISO timestamp, a level and a logger.
    ours = [line for line in log.splitlines() if LINE.match(line)]
    assert any("sysmenu.lifecycle" in line for line in ours)
    for line in ours:
        match = LINE.match(line)
        assert match is not None
        datetime.datetime.fromisoformat(match.group(1))
    others = [
        line
        for line in log.splitlines()
        if not LINE.match(line) and not line.startswith(("Received", "Listening", "Communication", "Execing"))
    ]
    assert others == []  # systemd-socket-activate's own lines aside, nothing unformatted


def test_watchdog_pings_while_serving(activator: tuple[Activator, str], notify: socket.socket) -> None:
    act, key = activator
    with httpx.Client(base_url=act.url, headers={"X-Api-Key": key}, timeout=30) as client:
        assert client.get("/api/health").json() == {"status": "ok"}
        messages_until(notify, "READY=1")
        assert "WATCHDOG=1" in messages_until(notify, "WATCHDOG=1")


def test_serves_on_every_socket_passed(tmp_path: Path) -> None:
    """Two ListenStream= addresses (here two -l): one server answers on both."""
    ports = [free_port(), free_port()]
    data = tmp_path / "data"
    sysmenu("user", "add", "admin", "--group", "admins", "--password", "-", data_dir=data)
    key = sysmenu("key", "create", "admin", data_dir=data).strip()
    listen = [f"--listen=127.0.0.1:{port}" for port in ports]
    log = tmp_path / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [ACTIVATE, *listen, SYSMENU, "--data-dir", str(data), "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for port in ports:
            r = httpx.get(f"http://127.0.0.1:{port}/api/version", headers={"X-Api-Key": key}, timeout=30)
            assert r.status_code == 200, log.read_text()
        assert f"127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]}" in log.read_text()
    finally:
        process.terminate()
        # uvicorn re-raises the SIGTERM it handled once stopped; systemd counts that as clean
        assert process.wait(STOP_TIMEOUT) in (0, -signal.SIGTERM)
