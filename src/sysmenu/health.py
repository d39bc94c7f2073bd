"""``GET /api/health``: is this server fit to serve? For Docker, Kubernetes, uptime checkers.

Three checks, all cheap and none writing to disk (a Raspberry Pi's SD card is
probed every few seconds by such checkers):

- ``store``: the data directory is on a writable file system and SQLite's write
  lock can be taken (and is released at once: nothing is written);
- ``config``: the config file in force is the one on disk (a change that failed
  validation leaves the last good config running: the server works, but not as
  the file says);
- ``loop``: the event loop answers timers within `MAX_LAG` seconds.

No key is needed; the answer says nothing but the names of failing checks and
why. The detailed view is ``GET /api/status``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from .database import IN_MEMORY
from .responses import json_response

MAX_LAG = 1.0  # seconds an event-loop timer may be late before the loop counts as unhealthy
LOCK_TIMEOUT = 1.0  # seconds the store check waits for SQLite's write lock
STORE_TIMEOUT = 2.0  # seconds the store check may take in all


class LoopMonitor:
    """How late the event loop runs a timer set to fire every `interval` seconds;
    unhealthy while the last one was `max_lag` seconds late or more."""

    def __init__(self, interval: float = 0.5, max_lag: float = MAX_LAG) -> None:
        self.interval = interval
        self.max_lag = max_lag
        self.lag = 0.0  # seconds the last timer fired late
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.interval
        self._timer = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.lag = max(0.0, now - self._due)
        self._due = now + self.interval
        self._timer = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def healthy(self) -> bool:
        return self.lag < self.max_lag


def probe_store(path: str, timeout: float = LOCK_TIMEOUT) -> str | None:
    """Why the store at `path` cannot take a write now; None when it can.

    Blocking (its own short-lived connection): call it off the event loop."""
    if path == IN_MEMORY:
        return None
    directory = os.path.dirname(os.path.abspath(path))
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "the data directory is on a read-only file system"
    except OSError as exc:
        return f"the data directory cannot be read: {exc.strerror}"
    if not os.access(path, os.R_OK | os.W_OK):
        return "the database file cannot be written"
    try:
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        return f"the database cannot be opened: {exc}"
    try:
        db.execute("BEGIN IMMEDIATE")  # the write lock, as every change takes it
        db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"the database cannot take a write: {exc}"
    finally:
        db.close()
    return None


class Health:
    """The checks and the view; `config_error` is the rejected config change, if any;
    the store check waits `lock_timeout` seconds for the write lock."""

    def __init__(
        self,
        db_path: str,
        config_error: Callable[[], str | None],
        monitor: LoopMonitor,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.db_path = db_path
        self.config_error = config_error
        self.monitor = monitor
        self.lock_timeout = lock_timeout

    async def store_problem(self) -> str | None:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(probe_store, self.db_path, self.lock_timeout), STORE_TIMEOUT
            )
        except TimeoutError:
            return f"the database did not answer within {STORE_TIMEOUT:g} seconds"

    async def failing(self) -> dict[str, str]:
        """Each failing check's name and why it fails; empty when all is well."""
        problems: dict[str, str] = {}
        store = await self.store_problem()
        if store:
            problems["store"] = store
        if self.config_error():
            problems["config"] = "the config file's last change was rejected; the last good one is in force"
        if not self.monitor.healthy():
            monitor = self.monitor
            problems["loop"] = f"the event loop ran {monitor.lag:.2f} s late (limit {monitor.max_lag:g} s)"
        return problems

    async def view(self, request: Request) -> Response:
        problems = await self.failing()
        if not problems:
            return json_response({"status": "ok"}, 200)  # no-store, as every API answer
        names = ", ".join(problems)
        return json_response(
            {"status": "fail", "checks": problems, "error": f"Unhealthy: {names}"},
            503,
            {"Retry-After": "5"},
        )
