"""Starting a command cheaply on any event loop: CPython's spawn, the loop's pipes, a pidfd.

uvloop's ``subprocess_exec`` forks the whole server (page tables and all), which
takes several milliseconds at a server's size; CPython's ``subprocess.Popen`` uses
vfork, a fraction of a millisecond at any size. So the process is started with
Popen, its pipes are read by the running loop, and its exit is seen through a
pidfd (Linux 5.3+) on the loop, reaped with ``waitpid`` for this pid only. Where
pidfds are missing, the loop's own ``subprocess_exec`` is used.

The transport offers what the runner uses of asyncio's subprocess transport:
``get_pid``, ``get_returncode`` and ``close``; the protocol gets
``pipe_data_received``, ``process_exited`` and, once the process has exited and
both pipes are closed, ``connection_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
from collections.abc import Callable
from typing import TypeVar

P = TypeVar("P", bound=asyncio.SubprocessProtocol)


def _pidfds_work() -> bool:
    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return False
    os.close(fd)
    return True


PIDFD = _pidfds_work()


class _Pipe(asyncio.Protocol):
    def __init__(self, owner: ChildTransport, fd: int) -> None:
        self.owner = owner
        self.fd = fd

    def data_received(self, data: bytes) -> None:
        self.owner.protocol.pipe_data_received(self.fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._pipe_closed(self.fd)


class ChildTransport:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        popen: subprocess.Popen[bytes],
        protocol: asyncio.SubprocessProtocol,
    ) -> None:
        self.loop = loop
        self.popen = popen
        self.protocol = protocol
        self.returncode: int | None = None
        self.pipes: dict[int, asyncio.BaseTransport] = {}
        self._open_pipes = {1, 2}
        self._lost = False
        self.pidfd: int | None = os.pidfd_open(popen.pid)
        loop.add_reader(self.pidfd, self._reap)

    def get_pid(self) -> int:
        return self.popen.pid

    def get_returncode(self) -> int | None:
        return self.returncode

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.popen.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: the status is lost
            pid, status = self.popen.pid, 255 << 8
        if pid == 0:
            return
        self._close_pidfd()
        self.returncode = self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.protocol.process_exited()
        self._maybe_lost()

    def _close_pidfd(self) -> None:
        if self.pidfd is not None:
            self.loop.remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None

    def _pipe_closed(self, fd: int) -> None:
        self._open_pipes.discard(fd)
        self._maybe_lost()

    def _maybe_lost(self) -> None:
        if not self._open_pipes and self.returncode is not None and not self._lost:
            self._lost = True
            self.protocol.connection_lost(None)

    def close(self) -> None:
        """Close the pipes. A process still running stays watched, so it is reaped when it ends."""
        for pipe in self.pipes.values():
            pipe.close()


Transport = asyncio.SubprocessTransport | ChildTransport  # what `spawn` hands back


async def spawn(
    factory: Callable[[], P],
    argv: list[str],
    *,
    start_new_session: bool = True,
    env: dict[str, str] | None = None,
    started: Callable[[int], None] | None = None,
) -> tuple[Transport, P]:
    """Start `argv` with stdin from /dev/null and stdout, stderr piped to the protocol;
    `env` is its whole environment (None: the server's).

    `started` is called with the pid as soon as the process exists, before any await
    (so that a server killed at any later moment has recorded what to look for)."""
    loop = asyncio.get_running_loop()
    if not PIDFD:
        exec_transport, exec_protocol = await loop.subprocess_exec(
            factory,
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=start_new_session,
            env=env,
        )
        if started is not None:
            started(exec_transport.get_pid())
        return exec_transport, exec_protocol
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=start_new_session,
        env=env,
    )
    if started is not None:
        started(popen.pid)
    protocol = factory()
    try:
        transport = ChildTransport(loop, popen, protocol)
    except OSError:  # cannot watch it (out of file descriptors): do not leave it running
        with contextlib.suppress(OSError):
            popen.kill()
        popen.wait()
        raise
    protocol.connection_made(transport)  # type: ignore[arg-type]  # duck-typed, as uvloop's is
    assert popen.stdout is not None and popen.stderr is not None
    for fd, pipe in ((1, popen.stdout), (2, popen.stderr)):
        pipe_transport, _ = await loop.connect_read_pipe(functools.partial(_Pipe, transport, fd), pipe)
        transport.pipes[fd] = pipe_transport
    return transport, protocol
