"""Private files: the data directory 0700 and the database files 0600, whatever the umask.

The database holds argon2 hashes, key digests, run output, the audit log and CSRF
tokens. SQLite creates its files with the process's umask (0644 under the common
022), its ``-wal`` and ``-shm`` files alike; so the files are created 0600 before
SQLite opens them, and set so again afterwards. An existing data directory that
others can read is made private when sysmenu owns it, with a warning; else a
warning says what to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("sysmenu")

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> None:
    """Create `path` (and its parents) if missing; make it 0700 when others can read it."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    try:
        os.chmod(path, mode & ~0o077)
    except OSError as exc:
        log.warning(
            "data directory %s is mode %04o (others can read the database) and cannot be changed: %s; "
            "run: chmod 700 %s",
            path,
            mode,
            exc,
            path,
        )
    else:
        log.warning(
            "data directory %s was mode %04o (others could read it): made it %04o", path, mode, mode & ~0o077
        )


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if missing; set an existing one 0600."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    _make_private(path)


def private_database(path: Path) -> None:
    """The database file and SQLite's side files that exist, all 0600."""
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)):
        _make_private(file)


def _make_private(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, FILE_MODE)
    except FileNotFoundError:
        pass
    except OSError as exc:  # not ours (read-only copy, another owner): say so, serve anyway
        log.warning("cannot make %s private (mode 0600): %s", path, exc)
