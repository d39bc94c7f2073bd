"""A real Mosquitto (Debian's ``mosquitto``) on a loopback port, with a generated config."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.server import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
START_TIMEOUT = 10.0


def need_mosquitto() -> None:
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.fail("mosquitto is not installed (./scripts/test installs it)")


def mqtt_section(port: int, **keys: object) -> str:
    """A ``sysmenu.mqtt`` section for the broker on 127.0.0.1:`port` (YAML, indented
    under ``sysmenu:``)."""
    lines = ["  mqtt:", "    host: 127.0.0.1", f"    port: {port}"]
    lines += [f"    {k}: {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Broker:
    """One Mosquitto process; `restart` keeps its port and config."""

    port: int
    directory: Path
    extra: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log(self) -> Path:
        return self.directory / "mosquitto.log"

    def write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type subscribe",
            "connection_messages true",
        ]
        if os.getuid() == 0:  # else it drops to the `mosquitto` user, who cannot read our files
            lines.append(f"user {pwd.getpwuid(0).pw_name}")
        if "allow_anonymous" not in self.extra:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n" + self.extra + "\n")

    def start(self) -> None:
        self.write_config()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=out, stderr=out)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mosquitto exited:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"mosquitto not listening in {START_TIMEOUT}s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def mqtt_section(self, **keys: object) -> str:
        return mqtt_section(self.port, **keys)


@contextmanager
def mosquitto(directory: Path, extra: str = "") -> Iterator[Broker]:
    need_mosquitto()
    directory.mkdir(parents=True, exist_ok=True)
    broker = Broker(free_port(), directory, extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
