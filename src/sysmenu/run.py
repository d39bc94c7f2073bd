"""A run in progress (or just finished): its process's outcome, output and listeners."""

from __future__ import annotations

import asyncio
import time

from .catalogue import CommandSpec
from .feed import Chunk, OutputFeed
from .invocation import Invocation
from .models import Leftover, RunRecord, Who
from .output import Output
from .supervision import Ending


class Run:
    """A run in progress (or just finished): its process, output and listeners."""

    def __init__(
        self,
        run_id: int,
        spec: CommandSpec,
        who: Who,
        limit: int,
        invocation: Invocation | None = None,
    ) -> None:
        self.id = run_id
        self.spec = spec
        self.who = who
        self.invocation = invocation or Invocation.of(spec, {})
        self.started = time.time()
        self.state = "running"
        self.returncode: int | None = None
        self.signal: int | None = None
        self.duration: float | None = None
        self.pid: int | None = None
        self.leftovers: list[Leftover] = []  # background processes at its end
        self.stdout = Output(limit)
        self.stderr = Output(limit)
        self.feed = OutputFeed(limit)
        self.done = asyncio.Event()
        self.ending: str | None = None  # "killed" or "interrupted", set before the group is killed
        self.kill_requested = asyncio.Event()

    def subscribe(self) -> tuple[list[Chunk], asyncio.Queue[Chunk | None] | None]:
        """What was printed so far, and a queue of what follows (None once the run is over)."""
        return self.feed.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[Chunk | None]) -> None:
        self.feed.unsubscribe(queue)

    def kill(self) -> None:
        if not self.done.is_set():
            self.ending = self.ending or "killed"
            self.kill_requested.set()

    def interrupt(self) -> None:
        """Server stop: end the run as interrupted, whatever else was asked of it."""
        self.ending = "interrupted"
        self.kill_requested.set()

    def not_started(self, why: str) -> None:
        """The process could not be started: a failed run, `why` on its stderr."""
        self.stderr.feed(why.encode())
        self.state = "failed"

    def cancelled(self) -> None:
        """The runner's task was cancelled (the server stops) before the process ended."""
        self.state = "interrupted"

    def broken(self) -> None:
        """A bug in the runner: the run is recorded as failed rather than left running."""
        self.state = "failed"

    def finished(self) -> None:
        """The run is over, however it ended: its duration is fixed."""
        self.duration = time.time() - self.started

    def ended(self, ending: Ending) -> None:
        """Take how the process ended as the run's outcome."""
        self.returncode, self.signal = ending.returncode, ending.signal
        if self.ending is None and ending.timed_out:
            self.ending = "timeout"
        # `ignore: true` makes a failure a success: recorded as ok, its exit code kept
        self.state = self.ending or ("ok" if ending.returncode == 0 or self.spec.ignore else "failed")
        self.leftovers = ending.leftovers

    def record(self, output: bool = True) -> RunRecord:
        """The run as it stands, in the shape the run log keeps (output: with its text)."""
        return RunRecord(
            id=self.id,
            source=self.spec.source,
            action=self.spec.action,
            name=self.spec.name,
            user=self.who.user,
            auth=self.who.auth,
            client=self.who.client,
            started=self.started,
            ended=None if self.duration is None else self.started + self.duration,
            duration=self.duration,
            state=self.state,
            returncode=self.returncode,
            signal=self.signal,
            stdout_dropped=self.stdout.dropped,
            stderr_dropped=self.stderr.dropped,
            stdout=self.stdout.text() if output else None,
            stderr=self.stderr.text() if output else None,
            pid=self.pid,
            arguments=self.invocation.shown,
            leftovers=self.leftovers if output else None,
        )
