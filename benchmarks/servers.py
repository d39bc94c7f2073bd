"""The servers under test: sysmenu, OctoPrint and the bare ASGI floor, as processes.

Each is a `Server`: a command line, a URL and an API key. `Server.start` starts a
fresh process and returns the start-up time: from just before the process is
spawned until the first 200 answer of ``GET /api/version`` with the key.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import octoprint_ref

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
POLL_INTERVAL = 0.005
REPO = Path(__file__).resolve().parent.parent
SYSMENU = Path(sys.executable).parent / "sysmenu"

# The same commands on both servers: one sync and one async `true` (what is timed),
# and a few more so that the list is a realistic menu.
COMMANDS: list[dict[str, Any]] = [
    {"action": "true", "name": "True (sync)", "command": "true"},
    {"action": "true_async", "name": "True (async)", "command": "true", "async": True},
    {"action": "divider"},
    {"action": "uptime", "name": "Show uptime", "command": "uptime"},
    {"action": "disk", "name": "Disk usage", "command": "df -h", "confirm": "Show the disk usage?"},
    {"action": "fail", "name": "Fail", "command": "exit 3", "ignore": True},
]
SYNC_PATH = "/api/system/commands/custom/true"
ASYNC_PATH = "/api/system/commands/custom/true_async"
LIST_PATH = "/api/system/commands"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    argv: list[str]
    key: str
    port: int
    log: Path
    cwd: Path = REPO
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> float:
        """Start the process; return seconds until ``GET /api/version`` first answers 200."""
        assert self.process is None, "already running"
        env = os.environ | {"PYTHONUNBUFFERED": "1"} | self.env
        headers = {"X-Api-Key": self.key}
        with self.log.open("ab") as out, httpx.Client(timeout=5, headers=headers) as client:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd, env=env
            )
            deadline = started + START_TIMEOUT
            while time.perf_counter() < deadline:
                try:
                    if client.get(f"{self.url}/api/version").status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None:
                    break
                time.sleep(POLL_INTERVAL)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _run(cmd: list[str], timeout: float = 60) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def sysmenu_server(workdir: Path) -> Server:
    """sysmenu on a fresh data dir, with an admin made and a key created by its own CLI."""
    workdir.mkdir(parents=True, exist_ok=True)
    commands = [dict(c) for c in COMMANDS]
    # OctoPrint runs any number of the same async command at once; sysmenu's default
    # is one, so that back-to-back async requests would get 409 while one still runs.
    commands[1]["concurrency"] = 64
    port = free_port()
    config = workdir / "config.yaml"
    config.write_text(json.dumps({"system": {"actions": commands}}, indent=2) + "\n")
    data = workdir / "data"
    base = [str(SYSMENU), "--data-dir", str(data), "--config", str(config)]
    _run([*base, "user", "add", "bench", "--group", "admins", "--password", "-"])
    key = _run([*base, "key", "create", "bench"]).strip()
    argv = [*base, "serve", "--host", "127.0.0.1", "--port", str(port)]
    return Server("sysmenu", argv, key, port, workdir / "server.log")


def octoprint_server(workdir: Path) -> Server:
    """OctoPrint 1.11.8 in a fresh basedir (installed into the cache venv if needed)."""
    octoprint_ref.ensure_installed()
    port = free_port()
    basedir = workdir / "basedir"
    key = octoprint_ref.configure(basedir, [dict(c) for c in COMMANDS], port)
    argv = octoprint_ref.serve_command(basedir, port)
    return Server("octoprint", argv, key, port, workdir / "server.log", cwd=workdir)


def floor_server(workdir: Path, body: bytes) -> Server:
    """The bare ASGI app under uvicorn, configured as sysmenu configures it
    (httptools, uvloop when installed, no access log, no server header)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    argv = [
        sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--http", "httptools", "--ws", "none", "--loop", "auto", "--lifespan", "on",
        "--no-access-log", "--no-server-header", "--log-level", "warning",
    ]  # fmt: skip
    env = {"SYSMENU_BENCH_FLOOR_BODY": str(body_file), "PYTHONPATH": str(REPO)}
    return Server("floor", argv, "", port, workdir / "server.log", env=env)
