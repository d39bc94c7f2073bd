"""systemd's protocols: notify datagrams on a test socket, sockets passed as descriptors."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmenu.systemd import Notifier, Watchdog

pytestmark = pytest.mark.anyio


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    receiver.bind(path)
    receiver.settimeout(10)
    yield receiver, path
    receiver.close()


def received(receiver: socket.socket) -> list[str]:
    """The datagrams waiting on `receiver`, without waiting for more."""
    out = []
    receiver.setblocking(False)
    try:
        while True:
            out.append(receiver.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        receiver.settimeout(10)
    return out


def test_notifier_sends_ready_status_stopping_and_clears_the_environment(
    notify_socket: tuple[socket.socket, str],
) -> None:
    receiver, path = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid()), "PATH": "/x"}
    notifier = Notifier(env)
    assert env == {"PATH": "/x"}  # the commands sysmenu runs must not talk to systemd in its name
    assert notifier.watchdog_interval == 1.5
    notifier.ready("serving")
    notifier.status("serving")  # unchanged: not sent again
    notifier.status("running 1")
    notifier.stopping()
    notifier.close()
    assert received(receiver) == [
        "READY=1\nSTATUS=serving",
        "STATUS=running 1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_abstract_notify_socket() -> None:
    name = f"sysmenu-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(10)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.send("READY=1")
        assert receiver.recv(100) == b"READY=1"
        notifier.close()


def test_no_systemd_no_messages_and_a_watchdog_for_another_process_is_not_ours(
    notify_socket: tuple[socket.socket, str],
) -> None:
    assert not Notifier({}).enabled
    assert not Notifier({}).send("READY=1")
    _, path = notify_socket
    for_pid_1 = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    assert Notifier(for_pid_1).watchdog_interval is None
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).address is None


async def test_watchdog_pings_from_the_loop_and_stops_while_the_loop_is_blocked(
    notify_socket: tuple[socket.socket, str],
) -> None:
    receiver, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})  # a ping every 20 ms
    watchdog = Watchdog(notifier, lambda: True)
    watchdog.start()
    try:
        pings = 0
        while pings < 3:  # the loop runs: pings come
            await asyncio.sleep(0.01)
            pings += received(receiver).count("WATCHDOG=1")
        received(receiver)
        # Block the loop for 5 intervals, marking start and end on the same socket
        # (datagrams keep their order): nothing may come between the marks.
        notifier.send("TEST=blocked")
        time.sleep(0.1)
        notifier.send("TEST=released")
        after: list[str] = []
        while True:
            after += received(receiver)
            if "WATCHDOG=1" in after[after.index("TEST=released") :]:
                break
            await asyncio.sleep(0.01)
        start, end = after.index("TEST=blocked"), after.index("TEST=released")
        assert after[start + 1 : end] == []
        assert "WATCHDOG=1" in after[end:]  # and pings resume once the loop runs again
    finally:
        watchdog.stop()
        notifier.close()


async def test_watchdog_keeps_quiet_while_unhealthy(notify_socket: tuple[socket.socket, str]) -> None:
    receiver, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})
    healthy = False
    ticks = 0

    def check() -> bool:
        nonlocal ticks
        ticks += 1
        return healthy

    watchdog = Watchdog(notifier, check)
    watchdog.start()
    try:
        while ticks < 5:
            await asyncio.sleep(0.01)
        assert received(receiver) == []
        healthy = True
        while "WATCHDOG=1" not in received(receiver):
            await asyncio.sleep(0.01)
    finally:
        watchdog.stop()
        notifier.close()


# -- sockets passed as descriptors 3, 4, ... (in a child process: those numbers are its own)

PROBE = """
import json, os, socket
from sysmenu.systemd import ActivationError, listen_sockets
try:
    socks = listen_sockets()
except ActivationError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({
        "sockets": [s.getsockname()[1] for s in socks],
        "inheritable": [os.get_inheritable(s.fileno()) for s in socks],
        "env": sorted(k for k in os.environ if k.startswith("LISTEN_")),
    }))
"""


def run_with_fds(sockets: list[socket.socket], pid: str = "$$") -> dict[str, object]:
    """Run PROBE with `sockets` as fds 3.. and LISTEN_* set as systemd sets them."""
    high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 100 + i) for i, s in enumerate(sockets)]
    moves = " ".join(f"{n}>&{fd} {fd}>&-" for n, fd in enumerate(high, start=3))
    script = f'exec {moves}; export LISTEN_PID={pid} LISTEN_FDS={len(sockets)}; exec "$0" -c "$1"'
    try:
        result = subprocess.run(
            ["/bin/bash", "-c", script, sys.executable, PROBE],  # dash cannot move fds above 9
            capture_output=True,
            text=True,
            timeout=30,
            pass_fds=high,
            check=False,
        )
    finally:
        for fd in high:
            os.close(fd)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_passed_listening_sockets_are_taken_and_hidden_from_children() -> None:
    first, second = listening(), listening()
    with first, second:
        got = run_with_fds([first, second])
        assert got == {
            "sockets": [first.getsockname()[1], second.getsockname()[1]],
            "inheritable": [False, False],  # commands sysmenu runs do not get them
            "env": [],  # nor the variables
        }


def test_sockets_meant_for_another_process_are_not_taken() -> None:
    with listening() as sock:
        assert run_with_fds([sock], pid="1") == {"sockets": [], "inheritable": [], "env": []}


def test_a_datagram_socket_is_refused_with_a_reason() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        got = run_with_fds([sock])
    assert "not a listening stream socket" in str(got["error"])
