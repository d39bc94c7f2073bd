"""Running commands: one process group per run, bounded output, timeouts, kill.

Every run is recorded in the store before its process starts and finished in
one transaction. The runner owns its tasks (not the request that started
them): a client that goes away does not stop a run, and `close()` on server
stop kills every group that is still running.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import signal as signals
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from .catalogue import CommandSpec
from .errors import BadRequest, Conflict, NotFound, StorageUnavailable, SysmenuError
from .models import RunRecord, Who
from .output import Output
from .runlog import RunLog
from .spawn import spawn

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("sysmenu.runner")

SHELL = "/bin/sh"
_READ_SIZE = 65536
MAX_QUEUED = 64  # runs of one command that may wait for their turn without a request
_FOLLOWER_BACKLOG = 256  # queued chunks before a slow follower skips output
_PIPE_GRACE = 1.0  # seconds a leftover process may hold the pipes after the command ends


def _process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a process from a later one with the same pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rsplit(b")", 1)[1].split()[19].decode()


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a process group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


class Run:
    """A run in progress (or just finished): its process, output and listeners."""

    def __init__(self, run_id: int, spec: CommandSpec, who: Who, limit: int) -> None:
        self.id = run_id
        self.spec = spec
        self.who = who
        self.started = time.time()
        self.state = "running"
        self.returncode: int | None = None
        self.signal: int | None = None
        self.duration: float | None = None
        self.pid: int | None = None
        self.stdout = Output(limit)
        self.stderr = Output(limit)
        self.done = asyncio.Event()
        self._ending: str | None = None  # "timeout" or "killed", set before the group is killed
        self._kill_requested = asyncio.Event()
        # Live output for followers: a bounded chronological log, and queues.
        self._log: deque[tuple[str, str]] = deque()
        self._log_bytes = 0
        self._log_limit = limit
        self.log_dropped = 0
        self._followers: dict[asyncio.Queue[tuple[str, str] | None], int] = {}

    def _emit(self, stream: str, text: str) -> None:
        self._log.append((stream, text))
        self._log_bytes += len(text)
        while self._log_bytes > self._log_limit and len(self._log) > 1:
            _, old = self._log.popleft()
            self._log_bytes -= len(old)
            self.log_dropped += len(old)
        for queue, skipped in list(self._followers.items()):
            # A follower that does not keep up skips output instead of growing memory.
            if queue.qsize() >= _FOLLOWER_BACKLOG:
                self._followers[queue] = skipped + len(text)
                continue
            if skipped:
                queue.put_nowait(("notice", f"[... {skipped} characters skipped ...]\n"))
                self._followers[queue] = 0
            queue.put_nowait((stream, text))

    def subscribe(self) -> tuple[list[tuple[str, str]], asyncio.Queue[tuple[str, str] | None] | None]:
        """What was printed so far, and a queue of what follows (None once the run is over).

        The queue ends with None when the run ends; call `unsubscribe` when done.
        """
        history = list(self._log)
        if self.done.is_set():
            return history, None
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._followers[queue] = 0
        return history, queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, str] | None]) -> None:
        self._followers.pop(queue, None)

    def _close_followers(self) -> None:
        for queue in self._followers:
            queue.put_nowait(None)

    def kill(self) -> None:
        if not self.done.is_set():
            self._ending = self._ending or "killed"
            self._kill_requested.set()

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
        )


class Runner:
    """Starts runs, enforces each command's concurrency, keeps the running set."""

    def __init__(
        self, runlog: RunLog, *, default_timeout: float, kill_grace: float, output_limit: int
    ) -> None:
        self.runlog = runlog
        self.default_timeout = default_timeout
        self.kill_grace = kill_grace
        self.output_limit = output_limit
        self.running: dict[int, Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._active: dict[tuple[str, str], list[Run]] = {}
        self._waiting: dict[tuple[str, str], deque[asyncio.Future[None]]] = {}
        self._queued: dict[tuple[str, str], int] = {}  # runs waiting without a request
        self._closing = False
        self._stop_grace = kill_grace

    @classmethod
    def from_settings(cls, runlog: RunLog, settings: Settings) -> Runner:
        """The runner the ``sysmenu:`` settings describe (the one settings -> Runner mapping)."""
        return cls(
            runlog,
            default_timeout=settings.default_timeout,
            kill_grace=settings.kill_grace,
            output_limit=settings.output_limit,
        )

    def configure(self, settings: Settings) -> None:
        """Take the run limits of `settings` (a reload); runs in progress keep theirs."""
        self.default_timeout = settings.default_timeout
        self.kill_grace = settings.kill_grace
        self.output_limit = settings.output_limit

    async def start(self, spec: CommandSpec, who: Who, idempotency_key: str | None = None) -> Run:
        """Start `spec` (waiting for a slot if it queues); 409 if it may not run now."""
        if spec.is_divider:
            raise BadRequest("Dividers cannot be executed")
        if spec.command is None:  # an empty command runs (and succeeds), as in OctoPrint
            raise SysmenuError(
                f"Command for {spec.source}:{spec.action} does not define a command to execute"
            )
        if self._closing:
            raise Conflict("The server is stopping")
        key = (spec.source, spec.action)
        active = self._active.setdefault(key, [])
        if len(active) >= spec.concurrency:
            if not spec.queue:
                ids = ", ".join(str(r.id) for r in active)
                raise Conflict(f"Command {spec.source}:{spec.action} is already running (run {ids})")
            await self._wait_turn(key, spec)
        try:
            run_id = self.runlog.start(spec.source, spec.action, spec.name, who, idempotency_key)
        except sqlite3.Error as exc:
            log.error("cannot record a run of %s:%s, not running it: %s", spec.source, spec.action, exc)
            raise StorageUnavailable(f"Cannot record the run, so the command was not run: {exc}") from None
        run = Run(run_id, spec, who, self.output_limit)
        active.append(run)
        self.running[run_id] = run
        task = asyncio.create_task(self._execute(run), name=f"run-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    def busy(self, spec: CommandSpec) -> bool:
        """Whether a run of `spec` would have to wait for a slot now."""
        return len(self._active.get((spec.source, spec.action), ())) >= spec.concurrency

    def start_later(
        self, spec: CommandSpec, who: Who, idempotency_key: str | None, started: Callable[[Run], None]
    ) -> None:
        """Queue a run of `spec` without waiting for its turn (an asynchronous command's
        request is answered at once); `started` is called with the run once it starts.
        409 when `MAX_QUEUED` runs of it wait already."""
        key = (spec.source, spec.action)
        if self._queued.get(key, 0) >= MAX_QUEUED:
            raise Conflict(f"Command {spec.source}:{spec.action} has {MAX_QUEUED} runs waiting already")
        self._queued[key] = self._queued.get(key, 0) + 1

        async def later() -> None:
            try:
                run = await self.start(spec, who, idempotency_key)
            except SysmenuError as exc:
                log.warning("queued run of %s:%s not started: %s", spec.source, spec.action, exc.message)
                return
            finally:
                self._queued[key] -= 1
            started(run)

        task = asyncio.create_task(later(), name=f"queued-{spec.source}-{spec.action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wait_turn(self, key: tuple[str, str], spec: CommandSpec) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(key, deque())
        queue.append(waiter)
        try:
            while len(self._active[key]) >= spec.concurrency:
                await waiter
                waiter = asyncio.get_running_loop().create_future()
                queue.appendleft(waiter)
        finally:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
        if self._closing:
            raise Conflict("The server is stopping")

    def _release(self, run: Run) -> None:
        key = (run.spec.source, run.spec.action)
        self._active[key].remove(run)
        self.running.pop(run.id, None)
        queue = self._waiting.get(key)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def _execute(self, run: Run) -> None:
        spec = run.spec
        assert spec.command is not None
        try:
            try:
                # own process group (start_new_session), killed as a group
                transport, protocol = await spawn(lambda: _Process(run), [SHELL, "-c", spec.command])
            except OSError as exc:
                run.stderr.feed(f"cannot start {SHELL}: {exc}\n".encode())
                run.state = "failed"
                return
            try:
                run.pid = transport.get_pid()
                try:
                    self.runlog.set_process(run.id, run.pid, _process_start_time(run.pid))
                except sqlite3.Error as exc:  # only recovery after a crash needs it
                    log.warning("cannot record the process of run %s: %s", run.id, exc)
                await self._supervise(run, protocol)
            finally:
                transport.close()
        except asyncio.CancelledError:
            run.state = "interrupted"
            if run.pid is not None:
                _killpg(run.pid, signals.SIGKILL)
        except Exception:  # a bug must still finish the run record
            log.exception("run %s failed inside the runner", run.id)
            run.state = "failed"
        finally:
            self._finish(run)

    def _finish(self, run: Run) -> None:
        run.duration = time.time() - run.started
        try:
            self._record_end(run)
        except sqlite3.Error as exc:  # the run stays "running" on disk: a restart marks it interrupted
            log.error("cannot record the end of run %s (%s): %s", run.id, run.state, exc)
        self._release(run)
        run.done.set()
        run._close_followers()
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

    def _record_end(self, run: Run) -> None:
        assert run.duration is not None
        self.runlog.finish(run.record())

    async def _supervise(self, run: Run, process: _Process) -> None:
        """Wait for the command's end (or its timeout, or a kill), then clean its group up."""
        timeout = run.spec.timeout or self.default_timeout
        exited = asyncio.ensure_future(process.exited.wait())
        killer = asyncio.ensure_future(run._kill_requested.wait())
        try:
            await asyncio.wait({exited, killer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not process.exited.is_set():
                run._ending = run._ending or "timeout"
                grace = self._stop_grace if self._closing else self.kill_grace
                await self._terminate(run.pid, process, grace)
        finally:
            killer.cancel()
            exited.cancel()
        assert run.pid is not None
        # The command has ended: what it left in its group goes with it, and its
        # output is read to the end (bounded: a process that left the group may hold a pipe).
        if _killpg(run.pid, 0):
            _killpg(run.pid, signals.SIGTERM)
            if not await _wait_event(process.closed, _PIPE_GRACE):
                _killpg(run.pid, signals.SIGKILL)
        await _wait_event(process.closed, _PIPE_GRACE)
        process.flush()
        code = process.returncode
        if code is not None and code < 0:
            run.signal = -code
        else:
            run.returncode = code
        if run._ending:
            run.state = run._ending
        else:
            run.state = "ok" if code == 0 else "failed"

    async def _terminate(self, pgid: int | None, process: _Process, grace: float) -> None:
        """SIGTERM to the group, SIGKILL after `grace` seconds."""
        assert pgid is not None
        _killpg(pgid, signals.SIGTERM)
        if not await _wait_event(process.exited, grace):
            _killpg(pgid, signals.SIGKILL)
            await process.exited.wait()

    def get(self, run_id: int) -> Run:
        run = self.running.get(run_id)
        if run is None:
            raise NotFound(f"Run {run_id} is not running")
        return run

    def recover(self) -> list[int]:
        """At start-up: mark runs a dead server left as interrupted, kill their groups."""
        ids = []
        for record in self.runlog.interrupt_running():
            ids.append(record.id)
            pid = record.pid
            if pid and record.pid_start and _process_start_time(pid) == record.pid_start:
                _killpg(pid, signals.SIGKILL)
        return ids

    async def close(self, grace: float = 2.0) -> None:
        """Server stop: kill every running group, mark the runs interrupted."""
        self._closing = True
        self._stop_grace = min(grace, self.kill_grace)
        for queue in self._waiting.values():
            for waiter in queue:
                if not waiter.done():
                    waiter.set_result(None)
        for run in list(self.running.values()):
            run._ending = "interrupted"
            run._kill_requested.set()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._stop_grace + 2 * _PIPE_GRACE + 1)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Whether `event` was set within `timeout` seconds."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


class _Process(asyncio.SubprocessProtocol):
    """Feeds a run's output as it arrives; tells apart "exited" from "pipes closed".

    asyncio's own Process.wait() (3.11) waits for the pipes too, so a background
    job holding stdout would hide the command's end.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.transport: asyncio.SubprocessTransport | None = None
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self.returncode: int | None = None
        self._decoders = {
            1: codecs.getincrementaldecoder("utf-8")("replace"),
            2: codecs.getincrementaldecoder("utf-8")("replace"),
        }

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is not a subclass of asyncio's, so no isinstance check.
        self.transport = cast(asyncio.SubprocessTransport, transport)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        name, sink = ("stdout", self.run.stdout) if fd == 1 else ("stderr", self.run.stderr)
        sink.feed(data)
        text = self._decoders[fd].decode(data)
        if text:
            self.run._emit(name, text)

    def flush(self) -> None:
        for fd, decoder in self._decoders.items():
            text = decoder.decode(b"", final=True)
            if text:
                self.run._emit("stdout" if fd == 1 else "stderr", text)

    def process_exited(self) -> None:
        assert self.transport is not None
        self.returncode = self.transport.get_returncode()
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
