"""Watching the config file: a good, complete new version takes effect, anything else is reported.

The file is polled (a stat call every few seconds costs nothing and needs no
inotify): when its identity, size or modification time changes it is read again.
Only a complete file is acted on. A file that another process still has open
for writing (an editor or ``cp`` between truncating and finishing it) is not
read; where that cannot be asked (a file owned by another user), a file changed
less than a second ago waits for the next check. An empty file is an error, not
a config without commands. A config that fails validation leaves the last good
one in force; every such error is logged, written to the audit log and shown by
``GET /api/status``.

Address, port and data dir need a restart: a change of them in the file is
shown in ``/api/status`` as pending until then (values given on the command
line are not changes of the file).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import time
from typing import TYPE_CHECKING

from .audit import NOBODY
from .catalogue import Catalogue
from .config import Config, load, parse
from .errors import ConfigError
from .settings import RESTART_KEYS

if TYPE_CHECKING:
    from .state import State

log = logging.getLogger("sysmenu.reload")

SETTLE = 1.0  # seconds a file must be unchanged when nobody can say whether it is open


class Unfinished(Exception):
    """The file is being written: look again at the next check."""


def _signature(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def _open_for_writing(fd: int) -> bool | None:
    """Whether any process has the file open for writing (a read lease is refused
    then); None when this process may not ask (not the file's owner)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EBUSY):
            return True
        return None
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False


def read_complete(path: str) -> str:
    """The text of the config file if it is complete; `Unfinished` while it is being
    written; `ConfigError` when it cannot be read or is empty."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    with os.fdopen(fd, "rb") as fh:
        before = os.fstat(fd)
        writing = _open_for_writing(fd)
        if writing:
            raise Unfinished(f"{path}: the file is open for writing by another process (being written?)")
        if writing is None and time.time() - before.st_mtime < SETTLE:
            raise Unfinished(f"{path}: changed less than {SETTLE:g} s ago")
        data = fh.read()
        after = os.fstat(fd)
    changed = (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)
    if changed or len(data) != after.st_size:
        raise Unfinished(f"{path}: the file changed while it was read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty (a config without commands is not put in force)")
    return text


class ConfigWatcher:
    def __init__(self, state: State, path: str, interval: float) -> None:
        self.state = state
        self.path = path
        self.interval = interval
        self._seen = _signature(path)
        self._reported: tuple[int, int, int, int] | None = None
        # What the file said at start: a key given on the command line is no change.
        try:
            at_start = load(path).sysmenu
        except ConfigError:
            at_start = state.config.sysmenu
        self._at_start = {key: getattr(at_start, key) for key in RESTART_KEYS}

    async def check(self) -> bool:
        """Reload if the file changed and is complete; return whether it changed."""
        signature = _signature(self.path)
        if signature == self._seen:
            return False
        state = self.state.config_state
        config = None
        try:
            config = parse(read_complete(self.path), self.path)
            await self.state.store.db.run(self.state.check_access, config)
        except Unfinished as exc:  # the signature is not remembered: look again next time
            if signature != self._reported:
                self._reported = signature
                self._reject(str(exc))
            return True
        except ConfigError as exc:
            self._seen = signature
            self._reject(str(exc))
            diff = self._diff(config) if config is not None else {}
            await self._audit("config-rejected", error=str(exc), **diff)
            return True
        self._seen = signature
        self._note_restart_keys(config)
        diff = self._diff(config)
        self.state.apply(config)
        state.error = state.error_at = None
        state.loaded = time.time()
        log.info("config reloaded from %s", self.path)
        await self._audit("config-reloaded", source=self.path, **diff)
        return True

    def _diff(self, config: Config) -> dict[str, list[str]]:
        """The commands `config` adds, removes and changes (their access rules included)."""
        rules = (self.state.config.access_rules(), config.access_rules())
        return self.state.catalogue.diff(Catalogue(config), rules)

    def _reject(self, error: str) -> None:
        state = self.state.config_state
        state.error, state.error_at = error, time.time()
        log.error("config change not applied, the last good config stays in force:\n%s", error)

    async def _audit(self, event: str, **detail: object) -> None:
        store = self.state.store
        await store.db.run(store.audit.record, event, NOBODY, **detail)

    def _note_restart_keys(self, config: Config) -> None:
        pending = {
            key: str(value) if isinstance(value, os.PathLike) else value
            for key in RESTART_KEYS
            if (value := getattr(config.sysmenu, key)) != self._at_start[key]
        }
        state = self.state.config_state
        if pending and pending != state.pending_restart:
            log.warning("%s changed in the config: takes effect at the next start", ", ".join(pending))
        state.pending_restart = pending

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # the watcher must survive anything a file system does
                log.exception("config watcher failed")
