"""Reading the process table (for the no-orphans, no-zombies checks)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains `marker` (zombies included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm_state = stat.rsplit(")", 1)[1].split()[0]
        if marker in cmdline or (comm_state == "Z" and marker in stat):
            found.append(int(entry.name))
    return found


def zombies_of(pid: int) -> list[int]:
    """Zombie children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def wait_until_gone(marker: str, timeout: float = 5.0) -> list[int]:
    """Poll (bounded) until no process carries `marker`; return what is left."""
    deadline = time.monotonic() + timeout
    left = processes_with(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_with(marker)
    return left
