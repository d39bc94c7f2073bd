"""Home Assistant for tests: ``homeassistant==2024.3.3`` in its own cached venv.

The venv lives in ``~/.cache/sysmenu-test/ha-2024.3.3`` (never in the repo, never in
``.venv``: Home Assistant is no dependency of sysmenu). It is created once, under a file
lock so that parallel test runs build it only once; the packages a test needs besides
Home Assistant itself (an integration's requirements) are passed as `extra` and
installed into the same venv when missing.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HA_VERSION = "2024.3.3"
CACHE = Path.home() / ".cache" / "sysmenu-test"
VENV = CACHE / f"ha-{HA_VERSION}"
INSTALL_TIMEOUT = 1800  # a first install downloads and builds a few hundred packages


def _installed(python: Path, requirements: Sequence[str]) -> bool:
    """Whether every requirement is met in the venv of `python` (checked by that Python)."""
    code = (
        "import sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "for req in sys.argv[1:]:\n"
        "    name, _, wanted = req.partition('==')\n"
        "    try:\n"
        "        have = version(name)\n"
        "    except PackageNotFoundError:\n"
        "        sys.exit(1)\n"
        "    if wanted and have != wanted:\n"
        "        sys.exit(1)\n"
    )
    result = subprocess.run([str(python), "-c", code, *requirements], capture_output=True, check=False)
    return result.returncode == 0


def homeassistant_python(extra: Sequence[str] = ()) -> Path:
    """The Python of the Home Assistant venv, with `extra` packages (``name==version``) in it."""
    CACHE.mkdir(parents=True, exist_ok=True)
    python = VENV / "bin" / "python"
    wanted = [f"homeassistant=={HA_VERSION}", *extra]
    with open(CACHE / f"ha-{HA_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it right now
        if python.exists() and _installed(python, wanted):
            return python
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        with open(CACHE / "ha-install.log", "ab") as log:
            subprocess.run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", *wanted],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=INSTALL_TIMEOUT,
            )
    return python
