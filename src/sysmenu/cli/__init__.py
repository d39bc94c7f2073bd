"""The ``sysmenu`` command: serve, check-config, list, user, key, run, runs.

This module only assembles the command groups of its submodules.
"""

from __future__ import annotations

from . import appkeys  # noqa: F401  (adds key requests/approve/deny to the key group)
from .accounts import key, user
from .root import main
from .runs import run_command, runs

for command in (user, key, run_command, runs):
    main.add_command(command)

__all__ = ["main"]
