"""The environment commands run with: a minimal, documented one, never the server's.

The server's own environment can hold secrets (``SYSMENU_API_KEY`` in a unit's
``Environment=``, credentials of other tools), and a command's output is stored and
shown to every SYSTEM user. So a command gets only:

- ``PATH``: the server's ``PATH``, else ``/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin``;
- ``LANG``: the server's ``LANG``, else ``C.UTF-8``;
- ``HOME``, ``USER``, ``LOGNAME``: those of the account sysmenu runs as (from the
  password database, not from the server's environment);
- then ``sysmenu.environment`` (for every command), then the command's own
  ``environment:`` (core commands get the global one only); later ones win, and
  either may override the variables above;
- then the run's argument values, ``SYSMENU_ARG_<NAME>`` (invocation.py): the only
  ``SYSMENU_`` variables a command ever sees.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from functools import cache

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # systemd's default
DEFAULT_LANG = "C.UTF-8"


@cache
def _account() -> dict[str, str]:
    try:
        entry = pwd.getpwuid(os.getuid())
    except KeyError:  # an id without an entry (some containers): say only what is known
        return {"HOME": "/"}
    return {"HOME": entry.pw_dir or "/", "USER": entry.pw_name, "LOGNAME": entry.pw_name}


def base_environment() -> dict[str, str]:
    """What every command gets before the config adds anything."""
    return {
        "PATH": os.environ.get("PATH") or DEFAULT_PATH,
        "LANG": os.environ.get("LANG") or DEFAULT_LANG,
        **_account(),
    }


def command_environment(*layers: Mapping[str, str]) -> dict[str, str]:
    """The base environment with `layers` laid over it in order (global, then the command's)."""
    env = base_environment()
    for layer in layers:
        env.update(layer)
    return env
