"""The reference: OctoPrint 1.11.8, installed from PyPI into its own cached venv.

Only installed and run, never imported or copied. The venv lives in
``~/.cache/sysmenu-bench/octoprint-1.11.8`` (``$SYSMENU_BENCH_CACHE`` moves the
cache), apart from the project's ``.venv``; a stamp file marks a finished install,
so an interrupted one is redone.

A basedir is configured headless, as a set-up OctoPrint is after its first-run
wizard: the wizards marked seen, the online checks and the plugin repository off,
bound to 127.0.0.1. The user is added with OctoPrint's own ``octoprint user add
--admin``. Its API key is an application key of the bundled Application Keys
plugin, which keeps them in ``data/appkeys/keys.yaml`` (user -> list of
``{app_id, api_key}``); that is the key kind OctoPrint 1.11 recommends. The global
``api.key`` also works, but 1.11 logs a deprecation warning on each use of it, which
would slow every request down.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

VERSION = "1.11.8"
USER = "bench"
APP_ID = "sysmenu-bench"
INSTALL_TIMEOUT = 600

# server.seenWizards as finishing the first-run wizard leaves it: each bundled wizard
# plugin's wizard version (None for the two that have none).
SEEN_WIZARDS = {"corewizard": 4, "classicwebcam": 1, "softwareupdate": 1, "backup": None, "tracking": None}


def cache_dir() -> Path:
    base = os.environ.get("SYSMENU_BENCH_CACHE") or str(Path.home() / ".cache" / "sysmenu-bench")
    return Path(base)


def venv_dir() -> Path:
    return cache_dir() / f"octoprint-{VERSION}"


def executable() -> Path:
    return venv_dir() / "bin" / "octoprint"


def ensure_installed(log: Path | None = None) -> Path:
    """Install OctoPrint into the cached venv unless it is there; return the `octoprint` path."""
    venv = venv_dir()
    stamp = venv / ".sysmenu-bench-complete"
    if stamp.exists() and executable().exists():
        return executable()
    print(f"installing OctoPrint {VERSION} into {venv} (once; takes a minute or two)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = log or venv.parent / f"octoprint-{VERSION}-install.log"
    with log.open("w") as out:
        for cmd in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             f"octoprint=={VERSION}"],
        ):  # fmt: skip
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT)
            if result.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"installing OctoPrint failed ({' '.join(cmd)}):\n{tail}")
    stamp.touch()
    return executable()


def config(commands: list[dict[str, Any]], port: int) -> dict[str, Any]:
    """OctoPrint's config.yaml for a headless, offline reference with `commands`."""
    return {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "firstRun": False,
            "seenWizards": SEEN_WIZARDS,
            "onlineCheck": {"enabled": False},
            "pluginBlacklist": {"enabled": False},
        },
        "accessControl": {"autologinLocal": False},
        "plugins": {
            "tracking": {"enabled": False},
            "announcements": {"enabled_channels": []},
            "softwareupdate": {"notify_users": False, "check_overlay_url": ""},
            "pluginmanager": {"repository": "", "notices": ""},
            "backup": {"restore_unsupported": False},
            "corewizard": {"seen": True},
        },
        "serial": {"autoconnect": False},
        "system": {"actions": commands},
    }


def configure(basedir: Path, commands: list[dict[str, Any]], port: int) -> str:
    """Set up `basedir` (config, admin user, application key); return the API key."""
    basedir.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: OctoPrint reads this file as it reads its own.
    (basedir / "config.yaml").write_text(json.dumps(config(commands, port), indent=2) + "\n")
    password = secrets.token_urlsafe(12)
    result = subprocess.run(
        [
            str(executable()),
            "--basedir",
            str(basedir),
            "user",
            "add",
            "--admin",
            "--password",
            password,
            USER,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"octoprint user add failed:\n{result.stdout}{result.stderr}")
    key = secrets.token_hex(16).upper()
    keys = basedir / "data" / "appkeys" / "keys.yaml"
    keys.parent.mkdir(parents=True, exist_ok=True)
    keys.write_text(json.dumps({USER: [{"app_id": APP_ID, "api_key": key}]}) + "\n")
    return key


def serve_command(basedir: Path, port: int) -> list[str]:
    cmd = [str(executable()), "--basedir", str(basedir), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if os.geteuid() == 0:
        cmd.append("--iknowwhatimdoing")  # OctoPrint refuses to run as root without it
    return cmd
