"""`sysmenu service install` the default way: sysmenu into a venv of its own (from PyPI and
this checkout), under a temporary root; then `service uninstall` removes that venv."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.server import SYSMENU

pytestmark = pytest.mark.e2e


def test_install_into_a_venv_of_its_own_and_uninstall(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install = [SYSMENU, "service", "install", "--root", str(root)]
    result = subprocess.run(install, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    venv = root / "opt/sysmenu"
    version = subprocess.run(
        [str(venv / "bin/sysmenu"), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and "sysmenu, version" in version.stdout, version.stderr
    python = os.path.realpath(venv / "bin/python")
    assert not python.startswith(("/root/", "/home/"))  # the unit's ProtectHome=yes would hide it
    assert os.readlink(root / "usr/local/bin/sysmenu") == "/opt/sysmenu/bin/sysmenu"
    unit = (root / "etc/systemd/system/sysmenu.service").read_text()
    assert "ExecStart=/opt/sysmenu/bin/sysmenu --config /etc/sysmenu/config.yaml" in unit
    result = subprocess.run(
        [SYSMENU, "service", "uninstall", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not venv.exists() and not (root / "usr/local/bin/sysmenu").is_symlink()
