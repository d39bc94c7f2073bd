"""Running commands: one process group per run, bounded output, timeouts, kill.

Every run is recorded before its process starts and finished in one
transaction. The runner owns its tasks (not the request that started them): a
client that goes away does not stop a run, and `close()` on server stop kills
every group that is still running. Admission is `Slots`' job, watching a
process `supervision`'s, live output the `OutputFeed`'s; the runner ties them
to the run log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal as signals
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from .catalogue import CommandSpec
from .errors import BadRequest, NotFound, StorageUnavailable, SysmenuError
from .invocation import Invocation
from .models import Who
from .procs import signal_group, start_time
from .run import Run
from .runlog import RunLog
from .slots import Slot, Slots
from .spawn import Transport, spawn
from .supervision import PIPE_GRACE, Process, supervise
from .tracker import ProcessTracker

__all__ = ["DuplicateKey", "Run", "RunObserver", "Runner"]

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger("sysmenu.runner")

MAX_QUEUED = 64  # runs of one command that may wait for their turn without a request
RETRY_ENDS = 1.0  # seconds between attempts to write run ends the store refused


class DuplicateKey(Exception):
    """Another request recorded a run with this Idempotency-Key first."""


class RunObserver(Protocol):
    """Told of each run's start and end (metrics, systemd's status line)."""

    def run_started(self, run: Run) -> None: ...

    def run_ended(self, run: Run) -> None: ...


class Runner:
    """Starts runs in their turn, supervises them, keeps the running set."""

    def __init__(
        self,
        runlog: RunLog,
        *,
        default_timeout: float,
        kill_grace: float,
        output_limit: int,
        pipe_grace: float = PIPE_GRACE,
        retry_ends: float = RETRY_ENDS,
    ) -> None:
        self.runlog = runlog
        self.retry_ends = retry_ends
        self.default_timeout = default_timeout
        self.kill_grace = kill_grace
        self.output_limit = output_limit
        self.pipe_grace = pipe_grace
        self.slots = Slots()
        self.running: dict[int, Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued: dict[tuple[str, str], int] = {}  # runs waiting without a request
        self._stop_grace: float | None = None  # set by close(): the kill grace while stopping
        self.observers: list[RunObserver] = []
        self.tracker = ProcessTracker(os.path.realpath(runlog.db.path))
        self.unwritten: dict[int, Run] = {}  # ended runs whose end the store refused so far
        self._uninterrupted: list[int] = []  # runs of a dead server not yet marked interrupted
        self._writer: asyncio.Task[None] | None = None
        self._detached: set[Transport] = set()  # transports whose pipes leftovers still hold

    def adopt_orphans(self) -> None:
        """Server only: see `ProcessTracker.adopt_orphans`."""
        self.tracker.adopt_orphans()

    @classmethod
    def from_settings(cls, runlog: RunLog, settings: Settings, pipe_grace: float = PIPE_GRACE) -> Runner:
        """The runner the ``sysmenu:`` settings describe (the one settings -> Runner mapping)."""
        runner = cls(runlog, default_timeout=0, kill_grace=0, output_limit=0, pipe_grace=pipe_grace)
        runner.configure(settings)
        return runner

    def configure(self, settings: Settings) -> None:
        """Take the run limits of `settings` (also on reload; runs in progress keep theirs)."""
        self.default_timeout = settings.default_timeout
        self.kill_grace = settings.kill_grace
        self.output_limit = settings.output_limit

    async def start(
        self,
        spec: CommandSpec,
        who: Who,
        idempotency_key: str | None = None,
        invocation: Invocation | None = None,
    ) -> Run:
        """Start `spec` (waiting for a turn if it queues); 409 if it may not run now.
        `invocation`: its argv and environment, made from checked argument values."""
        if spec.is_divider:
            raise BadRequest("Dividers cannot be executed")
        if not spec.runnable:
            raise SysmenuError(
                f"Command for {spec.source}:{spec.action} does not define a command to execute"
            )
        invocation = invocation or Invocation.of(spec, {})
        slot = await self.slots.acquire(spec)
        try:
            run_id = await self.runlog.db.run(
                self.runlog.start,
                spec.source,
                spec.action,
                spec.name,
                who,
                idempotency_key,
                invocation.recorded(),
            )
        except sqlite3.Error as exc:
            self.slots.release(slot)  # the turn goes to the next in line
            if isinstance(exc, sqlite3.IntegrityError) and idempotency_key is not None:
                raise DuplicateKey(idempotency_key) from None
            log.error("cannot record a run of %s:%s, not running it: %s", spec.source, spec.action, exc)
            raise StorageUnavailable(f"Cannot record the run, so the command was not run: {exc}") from None
        except BaseException:
            self.slots.release(slot)
            raise
        slot.run_id = run_id
        run = Run(run_id, spec, who, self.output_limit, invocation)
        self.running[run_id] = run
        task = asyncio.create_task(self._execute(run, slot), name=f"run-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for observer in self.observers:
            observer.run_started(run)
        return run

    def must_wait(self, spec: CommandSpec) -> bool:
        """Whether a run of `spec` would have to wait for its turn now."""
        return len(self.slots.held(spec)) >= spec.concurrency

    def start_later(
        self,
        spec: CommandSpec,
        who: Who,
        idempotency_key: str | None,
        started: Callable[[Run], Awaitable[None]],
        invocation: Invocation | None = None,
    ) -> bool:
        """Queue a run of `spec` without waiting for its turn (an asynchronous command's
        request is answered at once); `started` is awaited with the run once it starts.
        False, queueing nothing, when `MAX_QUEUED` runs of it wait so already: the caller
        then waits for its turn itself, which slows a flood down instead of growing memory."""
        key = (spec.source, spec.action)
        if self._queued.get(key, 0) >= MAX_QUEUED:
            return False
        self._queued[key] = self._queued.get(key, 0) + 1

        async def later() -> None:
            try:
                run = await self.start(spec, who, idempotency_key, invocation)
            except SysmenuError as exc:
                log.warning("queued run of %s:%s not started: %s", spec.source, spec.action, exc.message)
                return
            finally:
                self._queued[key] -= 1
            await started(run)

        task = asyncio.create_task(later(), name=f"queued-{spec.source}-{spec.action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _execute(self, run: Run, slot: Slot) -> None:
        argv = run.invocation.argv
        env = self.tracker.env(run.id, run.invocation.environment(dict(run.spec.environment)))
        noted: asyncio.Future[None] | None = None

        def started(pid: int) -> None:  # before any await: a kill -9 from here on finds it
            nonlocal noted
            run.pid = pid
            self.tracker.shells.add(pid)
            noted = asyncio.ensure_future(self._note_process(run))

        try:
            try:
                # own process group (start_new_session); the tag finds what leaves it
                transport, process = await spawn(
                    lambda: Process(run.stdout, run.stderr, run.feed), argv, env=env, started=started
                )
            except OSError as exc:
                run.not_started(f"cannot start {argv[0]}: {exc}\n")
                return
            try:
                assert run.pid is not None and noted is not None
                await noted
                ending = await supervise(
                    process,
                    run.pid,
                    timeout=run.spec.timeout or self.default_timeout,
                    kill=run.kill_requested,
                    grace=lambda: self.kill_grace if self._stop_grace is None else self._stop_grace,
                    pipe_grace=self.pipe_grace,
                    processes=self.tracker.run(run.id, run.pid, run.spec.leftovers),
                )
                run.ended(ending)
            finally:
                self._close_or_detach(transport, process)
        except asyncio.CancelledError:
            run.cancelled()
            if run.pid is not None:
                signal_group(run.pid, signals.SIGKILL)
                await self.tracker.run(run.id, run.pid).end(0)
        except Exception:  # a bug must still finish the run record
            log.exception("run %s failed inside the runner", run.id)
            run.broken()
        finally:
            await self._finish(run, slot)

    def _close_or_detach(self, transport: Transport, process: Process) -> None:
        """Close the pipes, unless leftovers hold them: then they close when those let go
        (or at server stop), and what still comes is dropped."""
        if not process.detached:
            transport.close()
            return
        self._detached.add(transport)
        process.closed_callback = lambda: self._detached.discard(transport)

    async def _note_process(self, run: Run) -> None:
        assert run.pid is not None
        try:
            await self.runlog.db.run(self.runlog.set_process, run.id, run.pid, start_time(run.pid))
        except sqlite3.Error as exc:  # only recovery after a crash needs it
            log.warning("cannot record the process of run %s: %s", run.id, exc)

    async def _finish(self, run: Run, slot: Slot) -> None:
        run.finished()
        if run.pid is not None:
            self.tracker.shells.discard(run.pid)
        try:
            await self.write_ends()  # older ends first
            await self.runlog.db.run(self.runlog.finish, run.record())
        except sqlite3.Error as exc:
            log.error(
                "cannot write the end of run %s (%s) yet, kept until it can be: %s", run.id, run.state, exc
            )
            self.unwritten[run.id] = run
            self._retry_writes()
        finally:
            self.running.pop(run.id, None)
            self.slots.release(slot)
            run.done.set()
            run.feed.close()
            for observer in self.observers:
                observer.run_ended(run)
        spec = run.spec
        log.info(
            "run %s %s:%s by %s ended %s (rc=%s)",
            run.id,
            spec.source,
            spec.action,
            run.who.user,
            run.state,
            run.returncode,
        )

    @property
    def queued(self) -> int:
        """Runs waiting for a free slot of their command."""
        return self.slots.waiting

    @property
    def busy(self) -> bool:
        """Whether a run is running or waiting."""
        return bool(self.running) or self.queued > 0

    def known(self, run_id: int) -> Run | None:
        """A run this server holds in memory: running, or ended but not yet written."""
        return self.running.get(run_id) or self.unwritten.get(run_id)

    def waiting(self) -> dict[str, int]:
        return self.slots.waiting_by_command()

    async def write_ends(self) -> None:
        """Write what the store refused before (raises while it still does)."""
        if self._uninterrupted:
            await self.runlog.db.run(self.runlog.interrupt_running, self._uninterrupted)
            log.warning("runs %s of an earlier server marked interrupted after all", self._uninterrupted)
            self._uninterrupted = []
        for run in list(self.unwritten.values()):
            await self.runlog.db.run(self.runlog.finish, run.record())
            del self.unwritten[run.id]
            log.warning("end of run %s (%s) written after all", run.id, run.state)

    def _retry_writes(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_later(), name="run-ends")

    async def _write_later(self) -> None:
        while self.unwritten or self._uninterrupted:
            await asyncio.sleep(self.retry_ends)
            with contextlib.suppress(sqlite3.Error):
                await self.write_ends()

    def get(self, run_id: int) -> Run:
        run = self.running.get(run_id)
        if run is None:
            raise NotFound(f"Run {run_id} is not running")
        return run

    async def recover(self) -> list[int]:
        """At start-up: end every process of the runs a dead server left, then mark them
        interrupted (later, if the store cannot be written now)."""
        runs = {
            record.id: record.pid if record.pid and start_time(record.pid) == record.pid_start else None
            for record in await self.runlog.db.run(self.runlog.running)  # a read: works read-only
        }
        self.tracker.end_runs_of_a_dead_server(runs)
        ids = sorted(runs)
        if not ids:  # the usual start: nothing to mark, no write transaction for it
            return ids
        try:
            await self.runlog.db.run(self.runlog.interrupt_running, ids)
        except sqlite3.Error:  # written as soon as the store accepts writes
            self._uninterrupted = ids
            self._retry_writes()
            raise
        return ids

    async def close(self, grace: float = 2.0) -> None:
        """Server stop: kill every running group, mark the runs interrupted."""
        self._stop_grace = min(grace, self.kill_grace)
        self.slots.close()
        for run in list(self.running.values()):
            run.interrupt()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._stop_grace + 2 * self.pipe_grace + 1)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        self.tracker.close()
        for transport in list(self._detached):
            transport.close()  # leftovers keep running; a write to the pipe may now fail
        if self._writer is not None:
            self._writer.cancel()
        try:
            await self.write_ends()
        except sqlite3.Error as exc:
            for run in self.unwritten.values():  # the log keeps what the database could not
                log.error(
                    "end of run %s lost (%s): %s, returncode %s, signal %s",
                    *(run.id, exc, run.state, run.returncode, run.signal),
                )
