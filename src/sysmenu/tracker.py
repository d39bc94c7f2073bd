"""The server's hold on its runs' processes: tags, the subreaper, reaping, leftovers.

`ProcessTracker` is one per runner; `RunProcesses` is its view of one run, which
supervision uses to end every process of a run (killed, timed out, interrupted)
or to find, record and keep (or end) what a run left behind at a normal end.
See `procs` for how processes are found.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal as signals
import time

from . import procs
from .models import Leftover

log = logging.getLogger("sysmenu.runner")

TICK = 0.05  # seconds between looks at the process table while processes end
SWEEP = 2.0  # seconds between reaps of adopted processes that ended


class ProcessTracker:
    def __init__(self, database: str) -> None:
        self.database = database  # the tag's second half: which server's runs these are
        self.subreaper = False
        self.shells: set[int] = set()  # the runs' own shells (waited for by their transports)
        self.left: set[int] = set()  # pids recorded as left behind by ended runs
        self._sweeper: asyncio.Task[None] | None = None

    def adopt_orphans(self) -> None:
        """Make this process (the server) a child subreaper for its runs' descendants and
        reap them. Not for a process with other children to wait for (tests, the CLI)."""
        self.subreaper = procs.become_subreaper()

    def env(self, run_id: int, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a run: `base` (else the server's), with the run's tag."""
        return (os.environ if base is None else base) | {procs.RUN_VAR: procs.run_tag(run_id, self.database)}

    def run(self, run_id: int, pgid: int, leftovers: str = "keep") -> RunProcesses:
        if self.subreaper and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="reaper")
        return RunProcesses(self, run_id, pgid, leftovers)

    def reap(self) -> None:
        if self.subreaper:
            procs.reap_adopted(self.shells)

    def not_to_reap(self) -> set[int] | None:
        """What `procs.kill_all` must not reap, or None when this process reaps nothing."""
        return set(self.shells) if self.subreaper else None

    async def _sweep(self) -> None:
        """Reap adopted processes when they end (leftovers of runs end at any time)."""
        while True:
            await asyncio.sleep(SWEEP)
            self.reap()
            self.left = {pid for pid in self.left if os.path.exists(f"/proc/{pid}")}

    def end_runs_of_a_dead_server(self, runs: dict[int, int | None]) -> None:
        """Kill every process of these runs (id -> verified group id, or None), found by
        group and by tag: also those that left the group, and runs whose pid was never
        written. Reads no database, so it works when the store cannot be written."""
        tags = {procs.run_tag(run_id, self.database): pgid for run_id, pgid in runs.items()}
        for pgid in tags.values():
            if pgid is not None:
                procs.signal_group(pgid, signals.SIGKILL)
        if tags:
            procs.kill_all(tags)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()


class RunProcesses:
    """The processes of one run (group `pgid`, tag of `run_id`, and their descendants)."""

    def __init__(self, tracker: ProcessTracker, run_id: int, pgid: int, leftovers: str) -> None:
        self.tracker = tracker
        self.tag = procs.run_tag(run_id, tracker.database)
        self.run_id = run_id
        self.pgid = pgid
        self.leftovers = leftovers

    def find(self) -> list[procs.Proc]:
        return procs.members({self.tag: self.pgid})[self.tag]

    def signal(self, sig: int) -> None:
        """`sig` to the group and to the processes that left it."""
        procs.signal_group(self.pgid, sig)
        procs.signal_all(self.find(), sig)

    async def end(self, grace: float) -> None:
        """SIGTERM to every process of the run, SIGKILL to what is left after `grace`
        seconds, until none is left."""
        deadline = time.monotonic() + grace
        found = self.find()
        procs.signal_all(found, signals.SIGTERM)
        while found and time.monotonic() < deadline:
            await asyncio.sleep(TICK)
            self.tracker.reap()
            found = self.find()
        procs.kill_all({self.tag: self.pgid}, self.tracker.not_to_reap())

    def may_have_left(self, pipes_open: bool) -> bool:
        """Cheap signs that something of the run may still be running (a /proc scan
        costs milliseconds; most runs leave nothing)."""
        if procs.signal_group(self.pgid, 0) or pipes_open:
            return True
        tracker = self.tracker
        if not tracker.subreaper:
            return False
        return bool({proc.pid for proc in procs.adopted_children(tracker.shells)} - tracker.left)

    async def settle(self, pipes_open: bool, grace: float) -> list[Leftover]:
        """The command ended by itself: what it left running is recorded and left alone,
        as a shell leaves it, or ended (``leftovers: kill``). The record of each process."""
        found = self.find() if self.may_have_left(pipes_open) else []
        kill = self.leftovers == "kill"
        left = [Leftover(pid=p.pid, command=procs.command_line(p.pid), killed=kill) for p in found]
        if found and kill:
            await self.end(grace)
        elif found:
            self.tracker.left.update(p.pid for p in found)
            log.info("run %s left running: %s", self.run_id, ", ".join(str(p.pid) for p in found))
        self.tracker.reap()
        return left
