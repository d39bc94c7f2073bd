"""systemd's two protocols, without a library: sockets passed in, and notify.

Socket activation (``sd_listen_fds``): systemd opens the listening sockets and
starts the service with them as file descriptors 3, 4, ... and ``LISTEN_FDS``,
``LISTEN_PID`` (and ``LISTEN_FDNAMES``) in the environment.

Notify (``sd_notify``): one datagram of ``KEY=value`` lines to the Unix socket named
by ``NOTIFY_SOCKET`` (``@name`` is an abstract socket): ``READY=1``, ``STOPPING=1``,
``STATUS=...`` and, with ``WatchdogSec=``, ``WATCHDOG=1`` at least every
``WATCHDOG_USEC`` microseconds.

Both read the environment once and then remove these variables, so that the
commands sysmenu runs neither take the sockets for theirs nor talk to systemd
in sysmenu's name (as sd_listen_fds(1) and sd_notify(1) do).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import Run

log = logging.getLogger("sysmenu.systemd")

LISTEN_FDS_START = 3
_LISTEN_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
_NOTIFY_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class ActivationError(Exception):
    """The passed sockets cannot be served (wrong kind, closed descriptor)."""


def _for_us(environ: MutableMapping[str, str], pid_var: str) -> bool:
    """Whether the variables were meant for this process (not inherited from a parent)."""
    pid = environ.get(pid_var, "")
    return not pid or (pid.isdigit() and int(pid) == os.getpid())


def listen_sockets(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """The listening stream sockets systemd passed to this process; [] when none.

    Raises `ActivationError` for a descriptor that is not a listening stream socket
    (``ListenDatagram=`` or a FIFO in the socket unit): those cannot serve HTTP.
    """
    env = os.environ if environ is None else environ
    count = env.get("LISTEN_FDS", "")
    meant = "LISTEN_PID" in env and _for_us(env, "LISTEN_PID")
    for name in _LISTEN_VARS:
        env.pop(name, None)
    if not meant or not count.isdigit() or int(count) == 0:
        return []
    sockets = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        try:
            os.set_inheritable(fd, False)  # the commands sysmenu runs must not hold them
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ActivationError(f"passed file descriptor {fd} is not a socket: {exc}") from None
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.detach()
            raise ActivationError(
                f"passed file descriptor {fd} is not a listening stream socket (use ListenStream=)"
            )
        sockets.append(sock)
    return sockets


def describe(sock: socket.socket) -> str:
    """``127.0.0.1:5000``, ``[::1]:5000`` or the path of a Unix socket."""
    name = sock.getsockname()
    if sock.family == socket.AF_INET6:
        return f"[{name[0]}]:{name[1]}"
    if sock.family == socket.AF_INET:
        return f"{name[0]}:{name[1]}"
    return str(name or "unix socket")


class Notifier:
    """Sends notify messages to systemd; does nothing when not started by systemd."""

    def __init__(self, environ: MutableMapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        watchdog = env.get("WATCHDOG_USEC", "")
        watchdog_ours = _for_us(env, "WATCHDOG_PID")
        for name in _NOTIFY_VARS:
            env.pop(name, None)
        if address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address if address.startswith(("/", "\0")) else None
        usec = int(watchdog) if watchdog.isdigit() and watchdog_ours else 0
        self.watchdog_interval = usec / 2_000_000 if usec > 0 else None  # seconds: half the timeout
        self._socket: socket.socket | None = None
        self._status = ""

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram; False when it could not be sent."""
        if self.address is None:
            return False
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._socket.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:  # systemd gone or the socket full: never the server's problem
            log.debug("cannot notify systemd: %s", exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self._status = status
        self.send("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def status(self, status: str) -> None:
        """``STATUS=``, sent only when it changed."""
        if status != self._status:
            self._status = status
            self.send(f"STATUS={status}")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Watchdog:
    """``WATCHDOG=1`` every half ``WATCHDOG_USEC``, sent by the event loop itself.

    The ping is a timer on the loop, not a thread: a loop that is blocked (or too
    late to serve: `healthy` says no) sends nothing, so systemd restarts it.
    """

    def __init__(self, notifier: Notifier, healthy: Callable[[], bool]) -> None:
        self.notifier = notifier
        self.healthy = healthy
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self.notifier.watchdog_interval is not None and self.notifier.enabled:
            self._tick()

    def _tick(self) -> None:
        interval = self.notifier.watchdog_interval
        assert interval is not None
        if self.healthy():
            self.notifier.send("WATCHDOG=1")
        else:
            log.warning("event loop unhealthy: not telling systemd's watchdog that all is well")
        self._timer = asyncio.get_running_loop().call_later(interval, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class StatusLine:
    """A run observer keeping systemd's ``STATUS=`` line on what runs now
    (``systemctl status sysmenu`` shows it)."""

    def __init__(self, notifier: Notifier, running: Callable[[], Iterable[Run]], where: str) -> None:
        self.notifier = notifier
        self.running = running
        self.where = where

    def text(self) -> str:
        runs = [f"{run.spec.source}:{run.spec.action} (run {run.id})" for run in self.running()]
        if not runs:
            return f"serving on {self.where}; no command running"
        return f"serving on {self.where}; running {len(runs)}: " + ", ".join(runs)

    def run_started(self, run: Run) -> None:
        self.notifier.status(self.text())

    def run_ended(self, run: Run) -> None:
        self.notifier.status(self.text())
