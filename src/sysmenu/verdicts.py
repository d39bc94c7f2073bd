"""The doctor's command verdicts as a running server sees them, for ``GET /api/status``.

The server is the service's user, so it checks as itself (no switching): programs, sudo
without a password (or NoNewPrivileges forbidding sudo altogether), polkit. Checks spawn
small programs, so they run in a thread, on the first ask after a start, a config change or
`TTL` seconds (sudoers and polkit rules change without sysmenu knowing), never per request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .catalogue import Catalogue
from .doctor import Account, Prober, Verdict, command_verdicts, no_new_privileges

TTL = 60.0
WAIT = 15.0  # seconds a status request waits for a check in progress; then "not checked yet"


def _check(catalogue: Catalogue) -> list[dict[str, Any]]:
    prober = Prober(Account.current(), no_new_privileges())
    specs = [s for specs in catalogue.specs.values() for s in specs]
    verdicts = command_verdicts(specs, prober)
    checked = [s for s in specs if not s.is_divider]
    return [
        {"source": s.source, "action": s.action, **v.as_dict()}
        for s, v in zip(checked, verdicts, strict=True)
    ]


class Verdicts:
    """The latest verdicts for a catalogue, checked at most once per `TTL`."""

    def __init__(self) -> None:
        self._task: asyncio.Future[list[dict[str, Any]]] | None = None
        self._catalogue: Catalogue | None = None
        self._checked = 0.0

    async def get(self, catalogue: Catalogue) -> list[dict[str, Any]]:
        now = time.monotonic()
        if self._task is None or self._catalogue is not catalogue or now - self._checked > TTL:
            self._task = asyncio.ensure_future(asyncio.to_thread(_check, catalogue))
            self._catalogue, self._checked = catalogue, now
        try:
            return await asyncio.wait_for(asyncio.shield(self._task), WAIT)
        except TimeoutError:
            pending = Verdict("", None, "still being checked")
            return [
                {"source": s.source, "action": s.action, **pending.as_dict()}
                for specs in catalogue.specs.values()
                for s in specs
                if not s.is_divider
            ]
