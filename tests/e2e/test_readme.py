"""Every command line the README shows (its ``sh`` blocks) is run here, as typed.

What is changed, and why (nothing else is):
- ports: the README's 5000 and 5001 become free ports (others may run on this machine), set
  through the config (``$SYSMENU_CONFIG`` or ``~/.octoprint/config.yaml`` with ``$HOME`` a
  temporary directory) or replaced in the line;
- ``./scripts/test`` without arguments and the soak line run with ``PYTEST_ADDOPTS=--co -q``
  (lint, types and collection: the full suite would run itself recursively); the line with a
  test file runs for real, which proves arguments reach pytest;
- the service lines install into a temporary root (``--root``) for a throwaway user the test
  makes (``--user``), sysmenu into a venv of its own there (from this checkout and PyPI), as
  by default; ``sudo sysmenu`` names that venv's sysmenu, since the link install makes is
  under that root. The dry run runs as typed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import free_port, sysmenu

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
START_TIMEOUT = 120.0  # the first ./scripts/run may install into .venv


def readme_command_lines() -> list[str]:
    """The command lines of the README's ``sh`` blocks, without their trailing comments."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


RUN_PLAIN = "./scripts/run"
RUN_CONFIG = "./scripts/run --config ~/.octoprint/config.yaml"
RUN_PORT = "./scripts/run --port 5001"
CURL_LIST = 'curl -H "X-Api-Key: $KEY" http://127.0.0.1:5000/api/system/commands'
CURL_RUN = 'curl -X POST -H "X-Api-Key: $KEY" http://127.0.0.1:5000/api/system/commands/custom/uptime'
CHECK = ".venv/bin/sysmenu check-config ~/.octoprint/config.yaml"
TEST_PLAIN = "./scripts/test"
TEST_FILE = "./scripts/test tests/test_config.py"
TEST_SOAK = "SYSMENU_SOAK_SECONDS=60 ./scripts/test tests/e2e/test_soak.py"
DRY_RUN = "sudo .venv/bin/sysmenu service install --dry-run"
INSTALL = "sudo .venv/bin/sysmenu service install --config ~/.octoprint/config.yaml"
DOCTOR = "sudo sysmenu doctor"
UNINSTALL = "sudo sysmenu service uninstall"
COVERED = [
    RUN_PLAIN,
    TEST_PLAIN,
    CURL_LIST,
    CURL_RUN,
    RUN_CONFIG,
    RUN_PORT,
    CHECK,
    DRY_RUN,
    INSTALL,
    DOCTOR,
    UNINSTALL,
    TEST_FILE,
    TEST_SOAK,
]


def test_every_readme_command_line_is_covered_here() -> None:
    assert sorted(readme_command_lines()) == sorted(COVERED)


def demo_config(port: int) -> str:
    from sysmenu.config import DEMO_CONFIG

    return DEMO_CONFIG + f"sysmenu:\n  port: {port}\n"


def bash(line: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYSMENU_", "PYTEST_", "XDG_"))}
    return {**env, "HOME": str(home), "PYTHONUNBUFFERED": "1", **extra}


class Started:
    """A ./scripts/run line running until `stop`; `output` is what it printed."""

    def __init__(self, line: str, env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            ["bash", "-c", line],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self.output = ""
        for text in self.process.stdout:  # ends when the process does: bounded by its life
            self.output += text
            if text.startswith("Open http://"):
                break
        assert f"Open http://127.0.0.1:{port}/" in self.output, self.output
        deadline = time.monotonic() + 20
        while True:  # the line comes just before the socket is opened
            try:
                self.get("/api/version")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and self.process.poll() is None, self.output
                time.sleep(0.05)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=10)

    def stop(self) -> bool:
        """Stop it; whether it ended as a server should on SIGTERM (uvicorn re-raises it)."""
        self.process.send_signal(signal.SIGTERM)  # bash and scripts/run exec: this is sysmenu
        code = self.process.wait(30)
        assert self.process.stdout is not None
        self.output += self.process.stdout.read()
        self.process.stdout.close()
        return code in (0, -signal.SIGTERM) and "Finished server process" in self.output


def test_scripts_run_without_arguments_and_the_curl_lines(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(demo_config(port))
    data = tmp_path / "data"
    sysmenu("user", "add", "readme", "--group", "admins", "--password", "-", data_dir=data)
    key = sysmenu("key", "create", "readme", data_dir=data).strip()
    env = environment(tmp_path, SYSMENU_CONFIG=str(config), SYSMENU_DATA_DIR=str(data))
    server = Started(RUN_PLAIN, env, port)
    try:
        assert server.get("/api/version").status_code == 403  # up, and wants a key
        curl_env = {**env, "KEY": key}
        listed = bash(CURL_LIST.replace(":5000", f":{port}"), curl_env, 60)
        assert listed.returncode == 0 and '"custom"' in listed.stdout and "uptime" in listed.stdout
        ran = bash(CURL_RUN.replace(":5000", f":{port}"), curl_env, 60)
        assert ran.returncode == 0 and ran.stdout == ""  # 204
        runs = httpx.get(f"http://127.0.0.1:{port}/api/runs", headers={"X-Api-Key": key}, timeout=10).json()
        assert [(r["source"], r["action"], r["state"]) for r in runs["runs"]] == [("custom", "uptime", "ok")]
    finally:
        assert server.stop(), server.output


def test_scripts_run_with_a_config_and_with_a_port(tmp_path: Path) -> None:
    port = free_port()
    octoprint = tmp_path / ".octoprint"
    octoprint.mkdir()
    (octoprint / "config.yaml").write_text(demo_config(port))
    server = Started(RUN_CONFIG, environment(tmp_path), port)
    try:
        assert f"config {octoprint}/config.yaml" in server.output
        assert server.get("/api/version").status_code == 403
    finally:
        assert server.stop(), server.output
    checked = bash(CHECK, environment(tmp_path), 60)
    assert checked.returncode == 0 and "config.yaml: OK (4 core, 5 custom, 0 plugin)" in checked.stdout

    port = free_port()
    server = Started(RUN_PORT.replace("5001", str(port)), environment(tmp_path), port)
    try:
        assert server.get("/api/version").status_code == 403
        assert "config <built-in demo>" in server.output
    finally:
        assert server.stop(), server.output


def test_scripts_test_with_and_without_arguments(tmp_path: Path) -> None:
    collect = environment(Path.home(), PYTEST_ADDOPTS="--co -q")
    plain = bash(TEST_PLAIN, collect)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert "tests/test_config.py::" in plain.stdout and "tests/e2e/test_readme.py::" in plain.stdout
    soak = bash(TEST_SOAK, collect)
    assert soak.returncode == 0, soak.stdout[-3000:] + soak.stderr[-3000:]
    collected = [line for line in soak.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("tests/e2e/test_soak.py::") for line in collected)
    one = bash(TEST_FILE, environment(Path.home()))
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    assert re.search(r"\d+ passed", one.stdout) and "failed" not in one.stdout
    assert "test_soak" not in one.stdout


@pytest.fixture
def service_user() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("sudo") is None or shutil.which("useradd") is None:
        pytest.skip("needs root, sudo and useradd (scripts/test installs sudo)")
    name = f"smreadme{uuid.uuid4().hex[:6]}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def test_the_service_lines(service_user: str) -> None:
    # Under /tmp (not pytest's 0700 directory) so that the service's user can reach its data dir.
    base = Path(tempfile.mkdtemp(prefix="sysmenu-readme-"))
    try:
        base.chmod(0o755)
        home, root = base / "home", base / "root"
        (home / ".octoprint").mkdir(parents=True)
        (home / ".octoprint/config.yaml").write_text(demo_config(free_port()))
        env = environment(home)
        dry = bash(DRY_RUN, env, 120)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "would write /etc/systemd/system/sysmenu.service (0644)" in dry.stdout
        installed = bash(f"{INSTALL} --root {root} --user {service_user}", env, 600)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        unit = root / "etc/systemd/system/sysmenu.service"
        assert f"User={service_user}\n" in unit.read_text()
        assert "ExecStart=/opt/sysmenu/bin/sysmenu --config /etc/sysmenu/config.yaml" in unit.read_text()
        assert (root / "etc/sysmenu/config.yaml").read_text() == (home / ".octoprint/config.yaml").read_text()
        installed_sysmenu = root / "opt/sysmenu/bin/sysmenu"
        assert os.readlink(root / "usr/local/bin/sysmenu") == "/opt/sysmenu/bin/sysmenu"
        python = os.path.realpath(root / "opt/sysmenu/bin/python")
        assert not python.startswith(("/root/", "/home/"))  # the unit's ProtectHome=yes would hide it
        doctor = bash(
            f"{DOCTOR.replace('sudo sysmenu', f'sudo {installed_sysmenu}')} --root {root}", env, 120
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert f"checking as user {service_user} (the service's User=)" in doctor.stdout
        assert re.search(rf"service program {re.escape(str(installed_sysmenu))}\s+yes", doctor.stdout)
        assert f"data dir {root}/var/lib/sysmenu" in doctor.stdout and "custom:uptime" in doctor.stdout
        removed = bash(
            f"{UNINSTALL.replace('sudo sysmenu', f'sudo {installed_sysmenu}')} --root {root}", env, 120
        )
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert not unit.exists() and (root / "etc/sysmenu/config.yaml").exists()
        assert not (root / "opt/sysmenu").exists() and not (root / "usr/local/bin/sysmenu").is_symlink()
    finally:
        shutil.rmtree(base)
