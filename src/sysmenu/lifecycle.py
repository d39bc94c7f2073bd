"""uvicorn's server as a systemd service: readiness, watchdog, status, idle exit.

- ``READY=1`` once the sockets serve, ``STOPPING=1`` when a stop begins, ``STATUS=``
  with the commands running, ``WATCHDOG=1`` from the event loop (see `systemd`).
- Idle exit (socket activation only): once no connection is open and no run is
  running or waiting for `idle_exit` seconds, the server stops accepting, lets
  anything that slipped in finish, and exits cleanly. The listening socket stays
  with systemd, which queues the next connection and starts sysmenu again for it.
  Runs, sessions, keys and the rate limits (see `handover`) carry over, so a client
  sees no difference but the first answer's start-up time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import uvicorn

from .health import LoopMonitor
from .runner import Runner
from .systemd import Notifier, StatusLine, Watchdog

log = logging.getLogger("sysmenu.lifecycle")

_DRAIN_POLL = 0.05


class ManagedServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        runner: Runner,
        monitor: LoopMonitor,
        notifier: Notifier,
        where: str,
        idle_exit: float = 0.0,
    ) -> None:
        super().__init__(config)
        self.runner = runner
        self.notifier = notifier
        self.watchdog = Watchdog(notifier, monitor.healthy)
        self.status_line = StatusLine(notifier, lambda: list(runner.running.values()), where)
        self.idle_exit = idle_exit
        self.idle_exiting = False
        self._last_busy = time.monotonic()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit or not self.started:
            return
        self._last_busy = time.monotonic()
        self.runner.observers.append(self.status_line)
        self.notifier.ready(self.status_line.text())
        self.watchdog.start()
        if self.idle_exit > 0:
            log.info("idle exit after %g s without requests or runs", self.idle_exit)

    async def on_tick(self, counter: int) -> bool:
        if self.idle_exit > 0 and not self.should_exit:
            self._check_idle()
        return await super().on_tick(counter)

    def _busy(self) -> bool:
        return bool(self.server_state.connections) or self.runner.busy

    def _check_idle(self) -> None:
        now = time.monotonic()
        if self._busy():
            self._last_busy = now
            return
        if now - self._last_busy < self.idle_exit:
            return
        log.info("idle for %g s: exiting; the next connection starts sysmenu again", self.idle_exit)
        self.idle_exiting = True
        # Stop accepting now, in this same loop step: a connection not yet accepted
        # waits in the socket's queue, which systemd keeps, for the next process.
        for server in self.servers:
            server.close()
        self.should_exit = True

    async def before_shutdown(self) -> None:
        """Tell systemd, stop the watchdog; after an idle exit, let what slipped in
        between the last check and the listeners' close finish (a stop signal ends
        the wait)."""
        self.notifier.stopping()
        self.watchdog.stop()
        if self.idle_exiting:
            while self._busy() and not self.force_exit and not getattr(self, "_captured_signals", None):
                await asyncio.sleep(_DRAIN_POLL)
