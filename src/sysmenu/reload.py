"""Watching the config file: a good new version takes effect, a bad one is reported.

The file is polled (a stat call every few seconds costs nothing and needs no
inotify): when its identity or modification time changes it is parsed again.
A config that fails validation leaves the last good one in force; the error
is logged, written to the audit log and shown by ``GET /api/status``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from .audit import NOBODY
from .catalogue import Catalogue
from .config import Config, load
from .errors import ConfigError

if TYPE_CHECKING:
    from .state import State

log = logging.getLogger("sysmenu.reload")


def _signature(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


class ConfigWatcher:
    def __init__(self, state: State, path: str, interval: float) -> None:
        self.state = state
        self.path = path
        self.interval = interval
        self._seen = _signature(path)

    async def check(self) -> bool:
        """Reload if the file changed; return whether it did change."""
        signature = _signature(self.path)
        if signature == self._seen:
            return False
        self._seen = signature
        state = self.state.config_state
        config = None
        try:
            config = load(self.path)
            await self.state.store.db.run(self.state.check_access, config)
        except ConfigError as exc:
            state.error, state.error_at = str(exc), time.time()
            log.error("config change not applied, the last good config stays in force:\n%s", exc)
            diff = self._diff(config) if config is not None else {}
            await self._audit("config-rejected", error=str(exc), **diff)
            return True
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

    async def _audit(self, event: str, **detail: object) -> None:
        store = self.state.store
        await store.db.run(store.audit.record, event, NOBODY, **detail)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # the watcher must survive anything a file system does
                log.exception("config watcher failed")
