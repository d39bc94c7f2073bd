"""The ``sysmenu`` command: serve, check-config, list, user, key, group, run, runs, audit,
doctor, service, fleet.

This module only assembles the command groups of its submodules.
"""

from __future__ import annotations

from . import appkeys  # noqa: F401  (adds key requests/approve/deny to the key group)
from .accounts import key, user
from .audit import audit
from .fleet import fleet_group
from .groups import group
from .options import add_everywhere
from .root import main
from .runs import run_command, runs
from .service import doctor, service
from .settings import settings

for command in (user, key, group, run_command, runs, audit, doctor, service, fleet_group, settings):
    main.add_command(command)
add_everywhere(main, skip=frozenset({"check-config"}))  # last: after every command is added

__all__ = ["main"]
