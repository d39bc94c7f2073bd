"""The ``sysmenu`` command: serve, check-config, list, user, key, run, runs.

This module only assembles the command groups of its submodules.
"""

from __future__ import annotations

from .accounts import key, user
from .options import add_everywhere
from .root import main
from .runs import run_command, runs

for command in (user, key, run_command, runs):
    main.add_command(command)
add_everywhere(main, skip=frozenset({"check-config"}))

__all__ = ["main"]
