"""Home Assistant for tests: a real release in its own cached venv, never in `.venv`.

`python(extra)` returns the venv's interpreter, creating the venv on first use:
``~/.cache/sysmenu-test/ha-<version>`` (``$SYSMENU_TEST_CACHE`` moves the cache). Creation
happens under a file lock, so parallel test processes (or engineers) wait for one install
instead of racing; stamp files mark a finished install of Home Assistant and of each set of
extra packages, so an interrupted install is redone. Extra packages (an integration's
requirements, which Home Assistant would otherwise install at run time) go into the same
venv: Home Assistant is large, and sets of extras that fit one release fit together.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

VERSION = "2024.3.3"  # the newest Home Assistant release for Python 3.11
INSTALL_TIMEOUT = 1800  # seconds for one pip run (Home Assistant pulls in a lot)


def cache_dir() -> Path:
    base = os.environ.get("SYSMENU_TEST_CACHE") or str(Path.home() / ".cache" / "sysmenu-test")
    return Path(base)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pip(venv: Path, packages: Sequence[str], log: Path) -> None:
    cmd = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        *packages,
    ]
    with log.open("a") as out:
        result = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT, check=False
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"pip install {' '.join(packages)} failed:\n{tail}")


def python(extra: Sequence[str] = (), version: str = VERSION) -> Path:
    """The interpreter of a venv holding ``homeassistant==version`` and `extra` packages
    (pip requirement strings), made on first use."""
    cache = cache_dir()
    venv = cache / f"ha-{version}"
    log = cache / f"ha-{version}-install.log"
    stamp = venv / ".sysmenu-test-complete"
    extras_stamp = venv / f".extras-{hashlib.sha256(' '.join(sorted(extra)).encode()).hexdigest()[:16]}"
    interpreter = venv / "bin" / "python"
    if stamp.exists() and (not extra or extras_stamp.exists()):
        return interpreter
    with _locked(cache / f"ha-{version}.lock"):
        if not stamp.exists():
            print(f"installing Home Assistant {version} into {venv} (once; takes minutes)", flush=True)
            shutil.rmtree(venv, ignore_errors=True)
            log.write_text("")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            _pip(venv, [f"homeassistant=={version}"], log)
            stamp.touch()
        if extra and not extras_stamp.exists():
            _pip(venv, list(extra), log)
            extras_stamp.touch()
    return interpreter
