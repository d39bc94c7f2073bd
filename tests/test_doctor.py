"""`sysmenu doctor`: real sudo, a real unprivileged user, real files and ports.

The user and its sudoers drop-in are made by the test (it runs as root) and removed after.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sysmenu.catalogue import CommandSpec
from sysmenu.cli import main
from sysmenu.doctor import (
    Account,
    Prober,
    command_verdict,
    command_verdicts,
    listen_problem,
    port_verdict,
    program_verdict,
)
from sysmenu.sudoers_list import nopasswd

SUDO = shutil.which("sudo")
needs_root_and_sudo = pytest.mark.skipif(
    os.geteuid() != 0 or SUDO is None or shutil.which("useradd") is None,
    reason="needs root, useradd and sudo (scripts/test installs Debian's sudo)",
)
SYSMENU = str(Path(sys.executable).parent / "sysmenu")

CONFIG = """\
server:
  commands:
    systemShutdownCommand: sudo -n /usr/bin/true
    systemRestartCommand: sudo -n /usr/bin/false
system:
  actions:
    - action: fine
      command: echo hi; uptime >/dev/null
    - action: missing
      command: /nonexistent/program --flag
    - action: asks
      name: Needs a password
      command: sudo -n /usr/bin/id -u
    - action: power
      command: systemctl poweroff
sysmenu:
  port: {port}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def throwaway_user() -> Iterator[str]:
    """An unprivileged user whose sudoers allow `true` without a password, `id -u` with one."""
    name = f"smdoc{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    dropin = Path(f"/etc/sudoers.d/sysmenu-test-{name}")
    try:
        dropin.write_text(f'{name} ALL=(root) NOPASSWD: /usr/bin/true ""\n{name} ALL=(root) /usr/bin/id -u\n')
        dropin.chmod(0o440)
        check = subprocess.run(["visudo", "-cf", str(dropin)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        yield name
    finally:
        dropin.unlink(missing_ok=True)
        subprocess.run(["userdel", name], check=False)


def rows(output: str) -> dict[str, str]:
    """The doctor's table as {check: the rest of its line}."""
    table = {}
    for line in output.splitlines():
        parts = line.split("  ", 1)
        if len(parts) == 2 and ":" in parts[0] and not parts[0].startswith(("config", "data", "port")):
            table[parts[0].strip()] = parts[1].strip()
        elif parts[0].startswith(("config", "data dir", "port")):
            table[parts[0].split()[0]] = line
    return table


@needs_root_and_sudo
def test_doctor_as_an_unprivileged_user(throwaway_user: str, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(port=port))
    data = tmp_path / "data"  # under root's 0700 tmp dir: not writable for the user
    args = ["--config", str(config), "--data-dir", str(data), "doctor", "--user", throwaway_user]
    result = subprocess.run([SYSMENU, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    table = rows(result.stdout)
    assert f"checking as user {throwaway_user}" in result.stdout
    assert table["core:shutdown"].startswith("yes")  # NOPASSWD
    assert table["core:reboot"].startswith("NO")
    assert f"sudoers does not allow user {throwaway_user} to run `/usr/bin/false`" in table["core:reboot"]
    assert table["custom:asks"].startswith("NO")
    assert f"sudo requires a password for user {throwaway_user}" in table["custom:asks"]
    assert table["custom:fine"].startswith("yes")
    assert table["custom:missing"].startswith("NO")
    assert "/nonexistent/program is not installed" in table["custom:missing"]
    assert table["custom:power"].startswith("NO")  # no polkit rule (or no systemd) for this user
    assert "NO" in table["data"] and f"not writable for user {throwaway_user}" in table["data"]
    assert "yes" in table["port"] and "free" in table["port"]
    assert "cannot work:" in result.stderr


@needs_root_and_sudo
def test_verdicts_seen_by_the_user_itself(throwaway_user: str) -> None:
    """The same verdicts when the user itself asks (no switching: the server's own view).
    A forked child drops to the user (this venv's Python lives under /root, out of its reach)."""
    entry = pwd.getpwnam(throwaway_user)
    specs = [
        CommandSpec("core", "shutdown", "S", "sudo -n /usr/bin/true"),
        CommandSpec("custom", "asks", "A", "sudo -n /usr/bin/id -u"),
        CommandSpec("custom", "no", "N", "sudo /usr/bin/false"),
    ]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            prober = Prober(Account.current())
            answer = [[v.runnable, v.why] for v in command_verdicts(specs, prober)]
            os.write(write, json.dumps([prober.switch, answer]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        switched, answer = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert switched is False
    assert answer[0] == [True, ""]
    assert answer[1] == [False, f"sudo requires a password for user {throwaway_user}"]
    assert answer[2][0] is False


def test_a_missing_program_and_a_builtin() -> None:
    prober = Prober(Account.current())
    spec = CommandSpec("custom", "x", "X", "no-such-program-here --help")
    verdict = command_verdict(spec, prober)
    assert verdict.runnable is False and "no-such-program-here is not installed" in verdict.why
    assert command_verdict(CommandSpec("custom", "y", "Y", "echo a && exit 3"), prober).runnable is True
    assert command_verdict(CommandSpec("custom", "z", "Z", None), prober).runnable is False


def test_the_services_program_must_start_and_not_be_hidden(tmp_path: Path) -> None:
    prober = Prober(Account.current())
    assert program_verdict("/bin/true", prober, protect_home=True).runnable is True
    hidden = program_verdict("/root/venv/bin/sysmenu", prober, protect_home=True)
    assert hidden.runnable is False and "under /root, hidden by ProtectHome=" in hidden.why
    script = tmp_path / "sysmenu"
    script.write_text("#!/home/pi/.venv/bin/python\n")
    script.chmod(0o755)
    assert "/home/pi/.venv/bin/python is under /home" in program_verdict(str(script), prober, True).why
    broken = program_verdict("/bin/false", prober, protect_home=False)
    assert broken.runnable is False and "does not start for user" in broken.why


def test_sudo_long_listing_decides_nopasswd() -> None:
    listing = """\
Matching Defaults entries for ann on vm:
    env_reset, !requiretty

User ann may run the following commands on vm:

Sudoers entry:
    RunAsUsers: root
    Options: !authenticate
    Commands:
\t/usr/bin/true ""
\t/usr/bin/systemctl restart octoprint

Sudoers entry:
    RunAsUsers: root
    Options: authenticate
    Commands:
\t/usr/bin/false ""
"""
    assert nopasswd(listing, "root", "/usr/bin/true", ()) is True
    assert nopasswd(listing, "root", "/usr/bin/false", ()) is False
    assert nopasswd(listing, "root", "/usr/bin/systemctl", ("restart", "octoprint")) is True
    assert nopasswd(listing, "octoprint", "/usr/bin/true", ()) is None
    assert nopasswd(listing, "root", "/usr/bin/id", ()) is None


@contextlib.contextmanager
def another_program() -> Iterator[int]:
    """A port held by a program that is not sysmenu: it answers every request with a 404
    at once (a silent one is `test_a_silent_program_on_the_port_is_not_taken_for_sysmenu`)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy.settimeout(0.05)
        stop = threading.Event()

        def answer() -> None:
            while not stop.is_set():
                try:
                    conn, _ = busy.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(5)
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        try:
            yield busy.getsockname()[1]
        finally:
            stop.set()
            thread.join()


def test_port_in_use_by_another_program(tmp_path: Path) -> None:
    with another_program() as port:
        assert "Address already in use" in (listen_problem("127.0.0.1", port) or "")
        config = tmp_path / "c.yaml"
        config.write_text(f"sysmenu:\n  port: {port}\n")
        r = CliRunner().invoke(main, ["doctor", "--config", str(config), "--data-dir", str(tmp_path / "d")])
    assert r.exit_code == 1
    assert "Address already in use" in r.output and "choose another sysmenu.port" in r.output


def test_a_silent_program_on_the_port_is_not_taken_for_sysmenu() -> None:
    with socket.socket() as busy:  # listens, never accepts: the probe's request goes unanswered
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        verdict = port_verdict("127.0.0.1", port, Account.current(), probe_timeout=0.05)
    assert verdict.runnable is False
    assert "Address already in use" in verdict.why and "another sysmenu.port" in verdict.fix


def test_invalid_config_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sysmenu:\n  port: many\n")
    r = CliRunner().invoke(main, ["doctor", "--config", str(config)])
    assert r.exit_code == 1
    assert "NO" in r.output and "sysmenu.port = 'many'" in r.output


def test_argv_entries_and_commands_with_arguments() -> None:
    from sysmenu.catalogue import Catalogue
    from sysmenu.config import parse
    from sysmenu.rules import grants

    catalogue = Catalogue(
        parse(
            """\
system:
  actions:
    - action: direct
      argv: [/bin/true, "{x}"]
      arguments: [{name: x, type: string}]
    - action: missing
      argv: [/no/such/program-here]
    - action: restart
      command: sudo systemctl restart "$1"
      arguments: [{name: unit, type: choice, choices: [nginx]}]
"""
        )
    )
    prober = Prober(Account.current())
    direct, missing, restart = (command_verdict(s, prober) for s in catalogue.specs["custom"])
    assert direct.runnable is True and "arguments are only known when it runs" in (direct.why or "")
    assert missing.runnable is False and "/no/such/program-here is not installed" in (missing.why or "")
    if shutil.which("sudo"):
        assert restart.runnable is True and "sudo and polkit not asked" in (restart.why or "")
    found = grants(catalogue.specs["custom"])
    assert found.sudo == {} and found.polkit == []
    assert found.problems == [
        "custom:restart: takes arguments, so no exact rule can allow it: write one by hand"
    ]
