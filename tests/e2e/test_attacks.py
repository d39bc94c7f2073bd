"""Hostile clients against a real server, over raw sockets (no client library to tidy them)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.e2e

CONFIG = """\
sysmenu:
  header_timeout: 1.5
  max_header_bytes: 8192
  max_connections: 64
system:
  actions:
    - action: hello
      name: Hello
      command: "touch {tmp}/hello"
"""


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    with running_server(tmp_path, CONFIG.format(tmp=tmp_path)) as s:
        yield s


def exchange(server: Server, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes (bounded by `timeout`)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
        return received


def request(server: Server, target: str, method: str = "POST", extra: str = "") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: {server.key}\r\n"
    head += f"{extra}Connection: close\r\n\r\n"
    return exchange(server, head.encode())


@pytest.mark.parametrize(
    "target",
    [
        "/api/system/commands/custom/../custom/hello",
        "/api/system/commands/./custom/hello",
        "/api/system/commands/custom/%2e%2e/custom/hello",
        "/api/system/commands/custom%2Fhello",
        "/api/system/commands/custom/hello/.",
        "/api/system/commands/../../../../etc/passwd",
        "/API/System/Commands/custom/hello",
        "/api/system/commands/custom/hello.",
        "/api/system/commands/custom/hello/",
        "/api/system/commands\\custom\\hello",
        "/api/system/commands/custom/%2E%2E/custom/hello",
        "/api/runs/1/../../system/commands/custom/hello",
    ],
)
def test_raw_path_tricks_run_nothing(server: Server, tmp_path: Path, target: str) -> None:
    answer = request(server, target)
    assert answer.startswith((b"HTTP/1.1 404", b"HTTP/1.1 405")), answer[:200]
    assert b'{"error": ' in answer
    assert not (tmp_path / "hello").exists()


def trickle(sock: socket.socket, start: float, pieces: Iterable[bytes]) -> float:
    """Send `pieces` 0.25 s apart until the server cuts the connection off; return how
    long after `start` it did. A server that answers first must answer 408."""
    for piece in pieces:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        time.sleep(0.25)
    data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"\r\ncache-control: no-store\r\n" in data.lower(), data
    return time.monotonic() - start


def test_slowloris_is_cut_off(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /api/system/commands HTTP/1.1\r\nHost: localhost\r\n")
        # one header line every 0.25 s, never finishing
        closed_after = trickle(sock, start, (f"X-Slow-{i}: y\r\n".encode() for i in range(40)))
        assert closed_after < 6, closed_after
    # the server still answers others
    assert request(server, "/api/system/commands", "GET").startswith(b"HTTP/1.1 200")


def test_slow_body_is_cut_off(server: Server, tmp_path: Path) -> None:
    """Headers at once, then the body a byte at a time ("R.U.D.Y."): uvicorn put no bound
    on it, so such clients held connections forever. The header timeout now covers the body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(
            b"POST /api/system HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: " + server.key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        # one byte every 0.25 s: 10 s, never reaching 100 bytes
        closed_after = trickle(sock, start, [b" "] * 40)
        assert closed_after < 6, closed_after
    assert request(server, "/api/system/commands", "GET").startswith(b"HTTP/1.1 200")
    time.sleep(0.2)
    assert "Traceback" not in server.output()


def test_complete_body_sent_in_pieces_within_the_timeout_is_served(server: Server, tmp_path: Path) -> None:
    body = b'{"action": "hello"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/system HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: " + server.key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        for i in range(0, len(body), 5):
            sock.sendall(body[i : i + 5])
            time.sleep(0.05)
        assert sock.recv(4096).startswith(b"HTTP/1.1 204")
    assert (tmp_path / "hello").exists()


def test_idle_connection_without_a_byte_is_closed(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        start = time.monotonic()
        data = sock.recv(4096)
        assert time.monotonic() - start < 6
        assert data == b"" or data.startswith(b"HTTP/1.1 408")


def test_huge_headers_get_431(server: Server) -> None:
    answer = request(server, "/api/system/commands", "GET", extra=f"X-Big: {'a' * 100_000}\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert b'{"error": "Request headers are too large"}' in answer
    # refused before the app, with the headers of every API answer
    assert b"\r\ncache-control: no-store\r\n" in answer.lower()
    assert b"\r\nx-content-type-options: nosniff\r\n" in answer.lower()
    answer = exchange(server, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]


def test_many_small_headers_and_a_huge_key_get_431(server: Server, tmp_path: Path) -> None:
    many = "".join(f"X-H{i}: {'v' * 20}\r\n" for i in range(1000))
    answer = request(server, "/api/system/commands/custom/hello", extra=many)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    head = "POST /api/system/commands/custom/hello HTTP/1.1\r\nHost: localhost\r\n"
    head += f"X-Api-Key: {'k' * 100_000}\r\n\r\n"
    answer = exchange(server, head.encode())
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert not (tmp_path / "hello").exists()


def test_chunked_body_without_length_gets_413(server: Server, tmp_path: Path) -> None:
    head = (
        f"POST /api/system HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: {server.key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b"x" * 32768
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    answer = exchange(server, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert not (tmp_path / "hello").exists()


def test_real_server_sends_no_cors_headers(server: Server) -> None:
    for method, extra in [
        ("GET", "Origin: http://evil.example\r\n"),
        ("OPTIONS", "Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n"),
        ("POST", "Origin: null\r\n"),
    ]:
        answer = request(server, "/api/system/commands", method, extra)
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 "), answer[:100]
        assert b"access-control-" not in head, head


def test_method_override_header_does_not_run_a_get(server: Server, tmp_path: Path) -> None:
    answer = request(server, "/api/system/commands/custom/hello", "GET", "X-HTTP-Method-Override: POST\r\n")
    assert answer.startswith(b"HTTP/1.1 405"), answer[:100]
    assert not (tmp_path / "hello").exists()


def test_huge_body_gets_413_json(server: Server, tmp_path: Path) -> None:
    answer = request(server, "/api/system/commands/custom/hello", extra="Content-Length: 10000000\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b'{"error": "Request body too large"}' in answer
    assert not (tmp_path / "hello").exists()


def test_connection_flood_is_capped_and_recovers(server: Server) -> None:
    socks = []
    try:
        for _ in range(80):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /api/system/commands HTTP/1.1\r\nHost: localhost\r\n")  # never finished
            socks.append(s)
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    assert request(server, "/api/system/commands", "GET").startswith(b"HTTP/1.1 200")
