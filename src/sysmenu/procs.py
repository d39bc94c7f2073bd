"""Finding every process a run started, including those that left its process group.

A run's processes are found three ways, each enough on its own:

- its **process group** (the shell is started as a group leader);
- its **tag**: every run starts with ``SYSMENU_RUN=<id>@<database>`` in its
  environment, which its descendants inherit whether they call ``setsid``,
  double-fork or outlive a server killed with -9 (the tag is set before the
  process exists, so nothing has to be written first for a later server to
  find them);
- the **process tree** below its shell.

On Linux the server makes itself a *child subreaper*: descendants whose parent
dies become its children instead of init's, so they stay in its tree and it
reaps them. Reading ``/proc`` costs a few milliseconds, so it is done when a run
is killed, times out or is interrupted, and at a normal end only when something
may be left (the group is not empty, a pipe is still open, or the server has
adopted a child).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal as signals
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sysmenu.procs")

RUN_VAR = "SYSMENU_RUN"
_PR_SET_CHILD_SUBREAPER = 36
_CMDLINE_LIMIT = 300  # characters of a leftover's command line that are recorded


def run_tag(run_id: int, database: str) -> str:
    """The value of ``SYSMENU_RUN`` for a run: its id and the database it is recorded in."""
    return f"{run_id}@{database}"


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux 3.4+); whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log.warning("cannot become a child subreaper: processes that leave a run are found by tag only")
    return ok


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str
    start: str  # start time in clock ticks since boot: tells a pid from a later one

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def _stat(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw.rsplit(b")", 1)[1].split()
    return Proc(pid, int(fields[1]), int(fields[2]), fields[0].decode(), fields[19].decode())


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat, or None when the process is gone."""
    proc = _stat(pid)
    return None if proc is None else proc.start


def table() -> dict[int, Proc]:
    """Every process this process can see."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _stat(int(entry))
            if proc is not None:
                procs[proc.pid] = proc
    return procs


def _tag_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:  # gone, or another user's
        return None
    prefix = RUN_VAR.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode("utf-8", "replace")
    return None


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")[:_CMDLINE_LIMIT]


def members(tags: dict[str, int | None], procs: dict[int, Proc] | None = None) -> dict[str, list[Proc]]:
    """The live (not zombie) processes of each run, by tag.

    `tags` maps a run's tag to its group id (the shell's pid; None when unknown).
    A process belongs to a run by group, by tag, or by descending from one that does.
    """
    procs = table() if procs is None else procs
    me = os.getpid()
    groups = {pgid: tag for tag, pgid in tags.items() if pgid is not None}
    owner: dict[int, str] = {}
    for proc in procs.values():
        if proc.pid == me or proc.zombie:
            continue
        tag = groups.get(proc.pgid)
        if tag is None:
            found = _tag_of(proc.pid)
            tag = found if found in tags else None
        if tag is not None:
            owner[proc.pid] = tag
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found_by: dict[str, list[Proc]] = {tag: [] for tag in tags}
    for pid, tag in list(owner.items()):
        stack = list(children.get(pid, ()))
        while stack:  # descendants that changed both their group and their environment
            child = stack.pop()
            if child not in owner and not procs[child].zombie:
                owner[child] = tag
                stack.extend(children.get(child, ()))
    for pid, tag in owner.items():
        found_by[tag].append(procs[pid])
    return found_by


def signal_group(pgid: int, sig: int) -> bool:
    """Signal a process group; False when no process of it is left (or may be signalled)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_all(procs: list[Proc], sig: int) -> None:
    for proc in procs:
        if start_time(proc.pid) == proc.start:  # still the same process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, sig)


def kill_all(tags: dict[str, int | None], reap: set[int] | None = None, rounds: int = 20) -> int:
    """SIGKILL every process of these runs until none is left (a process may fork while
    it is being killed, so the table is read again); return how many were killed.

    `reap`: in a subreaper, the pids not to reap (see `reap_adopted`); None elsewhere."""
    killed = 0
    for _ in range(rounds):
        found = [p for procs in members(tags).values() for p in procs]
        if not found:
            break
        signal_all(found, signals.SIGKILL)
        killed += len(found)
        if reap is not None:
            reap_adopted(reap)
    return killed


def adopted_children(exclude: set[int]) -> list[Proc]:
    """Children of this process that it adopted as a subreaper: not `exclude` (the runs'
    own shells), and not in its own process group, where everything it starts itself
    without a session of its own (probes, helpers) stays; those are others' to wait for."""
    me, group = os.getpid(), os.getpgrp()
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{me}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{me}/task/{task}/children") as fh:
                pids.extend(int(p) for p in fh.read().split())
    found = (_stat(pid) for pid in pids if pid not in exclude)
    return [proc for proc in found if proc is not None and proc.pgid != group]


def reap_adopted(exclude: set[int]) -> None:
    """Reap adopted children that have ended (a subreaper must, or they stay zombies).

    Call it only in a process that became a subreaper for its runs, with the runs'
    own shells in `exclude`: elsewhere (tests, the CLI) a child may be someone
    else's to wait for.
    """
    for proc in adopted_children(exclude):
        if proc.zombie:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
