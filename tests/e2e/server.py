"""A real sysmenu server process on 127.0.0.1, started with the `sysmenu` command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

SYSMENU = str(Path(sys.executable).parent / "sysmenu")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sysmenu(*args: str, data_dir: Path, config: Path | None = None) -> str:
    """Run a sysmenu CLI command; return its stdout (raise on failure)."""
    cmd = [SYSMENU, "--data-dir", str(data_dir)]
    if config is not None:
        cmd += ["--config", str(config)]
    result = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise AssertionError(f"sysmenu {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    key: str
    data_dir: Path
    config: Path
    log: Path

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Api-Key": self.key}, timeout=30, **kw)  # type: ignore[arg-type]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"server did not stop within {timeout}s:\n{self.output()}") from None


def start_process(
    data_dir: Path, config: Path, port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [SYSMENU, "--data-dir", str(data_dir), "--config", str(config), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}),
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, key: str = "") -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            r = httpx.get(f"{url}/api/version", headers={"X-Api-Key": key}, timeout=2)
            if r.status_code in (200, 403):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"server not ready in {START_TIMEOUT}s:\n{log.read_text()}")


ADMIN_PASSWORD = "admin-pw"  # the password of the admin every `running_server` has


@contextmanager
def running_server(tmp: Path, config_text: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start a server on `config_text` with an admin user and key (and `env` added to
    its environment); stop it afterwards."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "config.yaml"
    config.write_text(config_text)
    data_dir = tmp / "data"
    sysmenu("user", "add", "admin", "--group", "admins", "--password", ADMIN_PASSWORD, data_dir=data_dir)
    key = sysmenu("key", "create", "admin", data_dir=data_dir).strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    process = start_process(data_dir, config, port, log, env)
    server = Server(process, url, port, key, data_dir, config, log)
    try:
        wait_ready(url, process, log, key)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
