"""Socket activation: memory while idle, the first request after an idle exit (a cold
start through the socket) and a warm request, for sysmenu under `Activator`.

OctoPrint cannot be socket-activated; the report sets its start-up and its memory
after start-up against these.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from . import measure
from .activation import Activator
from .servers import Server

IDLE_EXIT = 1.0  # seconds: short, so that a round does not wait long for the exits
EXIT_TIMEOUT = 60.0
VERSION_PATH = "/api/version"


def request_ms(url: str, key: str) -> float:
    """One ``GET /api/version`` on a new connection, from connect to the end of the
    answer, in ms; it must answer 200. A plain socket: an HTTP client library's own
    set-up (TLS contexts and the like) would cost more than the request."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (
        f"GET {VERSION_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Api-Key: {key}\r\nConnection: close\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=EXIT_TIMEOUT) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    elapsed = (time.perf_counter() - started) * 1000
    status = answer.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {VERSION_PATH}: {answer[:300]!r}")
    return elapsed


def warm_request_ms(url: str, key: str, count: int) -> float:
    """The median of `count` requests as `request_ms` makes them, to a running server."""
    return measure.median([request_ms(url, key) for _ in range(count)])


def _activated_argv(server: Server) -> list[str]:
    """sysmenu's command line without its address (the socket is passed) and with idle exit."""
    argv = server.argv[: server.argv.index("serve")]
    return [*argv, "serve", "--idle-exit", f"{IDLE_EXIT:g}"]


def _wait_exit(activator: Activator, count: int) -> None:
    if not activator.wait_exits(count, EXIT_TIMEOUT):
        raise RuntimeError(f"sysmenu did not exit after {IDLE_EXIT:g} idle seconds")
    if activator.exits[count - 1] != 0:
        raise RuntimeError(f"sysmenu exited with {activator.exits[count - 1]} instead of an idle exit")


def _wait_waiting(activator: Activator) -> None:
    """Until the next systemd-socket-activate waits on the socket (not the measure's cost)."""
    deadline = time.monotonic() + EXIT_TIMEOUT
    while not activator.waiting():
        if time.monotonic() > deadline:
            raise RuntimeError("systemd-socket-activate did not start again")
        time.sleep(0.01)


def measure_activation(server: Server, warm_count: int, workdir: Path) -> dict[str, float]:
    """Cold start after an idle exit, warm requests, then memory once idle again."""
    activator = Activator(_activated_argv(server), workdir / "activation.log").start()
    try:
        request_ms(activator.url, server.key)  # the first start of this activator: not measured
        _wait_exit(activator, 1)
        _wait_waiting(activator)
        cold = request_ms(activator.url, server.key)
        warm = warm_request_ms(activator.url, server.key, warm_count)
        _wait_exit(activator, 2)
        _wait_waiting(activator)
        # What remains is systemd's part (here systemd-socket-activate stands in for it):
        # no sysmenu process, so no memory.
        process = activator.process
        idle = measure.rss_mb(process.pid) if process is not None and activator.server_running() else 0.0
    finally:
        activator.stop()
    return {"cold_start_s": cold / 1000, "warm_activated_ms": warm, "rss_idle_mb": idle}
