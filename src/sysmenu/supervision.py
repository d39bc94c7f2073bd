"""Supervising one command's process group: wait for its end, its timeout or a kill;
SIGTERM then SIGKILL the group; read its output to the end within a bounded grace.

Nothing here knows runs or the database: `supervise` returns how the process
ended, and the caller decides what that means. Which processes belong to the
command beyond its group (those that called ``setsid`` or double-forked) is
`RunProcesses`' business: they are ended with the command when it is killed or
times out, and left running (and recorded) when it ends by itself.
"""

from __future__ import annotations

import asyncio
import codecs
import signal as signals
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from .feed import OutputFeed
from .models import Leftover
from .output import Output
from .procs import signal_group
from .tracker import RunProcesses

PIPE_GRACE = 1.0  # seconds output may keep coming after the command ends
DRAIN_TICK = 0.05  # at a normal end, reading goes on while output arrives within this


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Whether `event` was set within `timeout` seconds."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


class Process(asyncio.SubprocessProtocol):
    """Feeds a command's output as it arrives; tells apart "exited" from "pipes closed".

    asyncio's own Process.wait() (3.11) waits for the pipes too, so a background
    job holding stdout would hide the command's end.
    """

    def __init__(self, stdout: Output, stderr: Output, feed: OutputFeed) -> None:
        self.sinks = {1: ("stdout", stdout), 2: ("stderr", stderr)}
        self.feed = feed
        self.transport: asyncio.SubprocessTransport | None = None
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()
        self.returncode: int | None = None
        self.received = 0
        self.detached = False  # the command is over: what its leftovers still print is dropped
        self.closed_callback: Callable[[], None] | None = None
        self._decoders = {
            1: codecs.getincrementaldecoder("utf-8")("replace"),
            2: codecs.getincrementaldecoder("utf-8")("replace"),
        }

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transport is not a subclass of asyncio's, so no isinstance check.
        self.transport = cast(asyncio.SubprocessTransport, transport)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.received += len(data)
        if self.detached:
            return
        name, sink = self.sinks[fd]
        sink.feed(data)
        text = self._decoders[fd].decode(data)
        if text:
            self.feed.emit(name, text)

    def flush(self) -> None:
        for fd, decoder in self._decoders.items():
            text = decoder.decode(b"", final=True)
            if text:
                self.feed.emit(self.sinks[fd][0], text)

    def process_exited(self) -> None:
        assert self.transport is not None
        self.returncode = self.transport.get_returncode()
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        if self.closed_callback is not None:
            self.closed_callback()


@dataclass(frozen=True, slots=True)
class Ending:
    """How a supervised process ended: its exit status (or signal), and whether its
    time ran out (it was then ended by sysmenu)."""

    returncode: int | None
    signal: int | None
    timed_out: bool
    leftovers: list[Leftover] = field(default_factory=list)  # see RunProcesses.settle


async def supervise(
    process: Process,
    pgid: int,
    *,
    timeout: float,
    kill: asyncio.Event,
    grace: Callable[[], float],
    pipe_grace: float,
    processes: RunProcesses,
) -> Ending:
    """Wait for the command's end, or its timeout, or `kill`; then end all its processes
    (when it did not end by itself) or settle what it left behind (when it did), and read
    its output to the end. `grace()`: seconds between SIGTERM and SIGKILL."""
    exited = asyncio.ensure_future(process.exited.wait())
    killer = asyncio.ensure_future(kill.wait())
    try:
        await asyncio.wait({exited, killer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        ended_by_us = not process.exited.is_set()
        if ended_by_us:
            await terminate(pgid, process, grace(), processes)
    finally:
        killer.cancel()
        exited.cancel()
    leftovers: list[Leftover] = []
    if ended_by_us or kill.is_set():  # nothing it started may stay
        await processes.end(grace())
        await wait_event(process.closed, pipe_grace)
    else:
        await drain(process, pipe_grace)
        leftovers = await processes.settle(not process.closed.is_set(), grace())
        if leftovers and leftovers[0]["killed"]:
            await wait_event(process.closed, pipe_grace)
        if not process.closed.is_set():
            process.detached = True  # let the pipes go: the answer does not wait for leftovers
    process.flush()
    code = process.returncode
    signal = -code if code is not None and code < 0 else None
    return Ending(
        returncode=None if signal is not None else code,
        signal=signal,
        timed_out=ended_by_us and not kill.is_set(),
        leftovers=leftovers,
    )


async def drain(process: Process, pipe_grace: float) -> None:
    """After the command's end: read its output until the pipes close, or as long as
    output keeps arriving (at most `pipe_grace` seconds): a background process it left
    may hold the pipes for ever."""
    deadline = asyncio.get_running_loop().time() + pipe_grace
    while not process.closed.is_set() and asyncio.get_running_loop().time() < deadline:
        received = process.received
        if await wait_event(process.closed, DRAIN_TICK) or process.received == received:
            return


async def terminate(pgid: int, process: Process, grace: float, processes: RunProcesses) -> None:
    """SIGTERM to the group and the processes that left it, SIGKILL to the group after
    `grace` seconds."""
    processes.signal(signals.SIGTERM)
    if not await wait_event(process.exited, grace):
        signal_group(pgid, signals.SIGKILL)
        await process.exited.wait()
