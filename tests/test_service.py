"""`sysmenu service install|uninstall`: dry runs, and real installs into a temporary root.

The generated files are checked by the tools that will read them where installed
(visudo, systemd-analyze, node for polkit's JavaScript), and against contrib/'s examples.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sysmenu.catalogue import Catalogue
from sysmenu.cli import main
from sysmenu.config import parse
from sysmenu.rules import grants, render_polkit, render_sudoers, visudo_check
from sysmenu.unit import SUDO_DROPIN, render_unit
from tests.test_contrib import ALLOWED, POLKIT, POLKIT_HARNESS, UNIT, sudoers_rules
from tests.test_contrib import SUDO_DROPIN as CONTRIB_DROPIN

SYSMENU = str(Path(sys.executable).parent / "sysmenu")
VISUDO = shutil.which("visudo", path="/usr/sbin:/sbin:/usr/bin")
SUDO_CONFIG = """\
server:
  commands:
    systemShutdownCommand: sudo -n /usr/bin/systemctl poweroff
    systemRestartCommand: sudo -n systemctl reboot
    serverRestartCommand: sudo -n /usr/bin/systemctl restart octoprint
system:
  actions:
    - action: uptime
      command: uptime
"""
POLKIT_CONFIG = """\
server:
  commands:
    systemShutdownCommand: /usr/bin/systemctl poweroff
    systemRestartCommand: systemctl reboot
    serverRestartCommand: /usr/bin/systemctl restart octoprint
"""


def specs(text: str) -> list:  # type: ignore[type-arg]
    return [s for group in Catalogue(parse(text)).specs.values() for s in group]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_contrib_unit_and_dropin_are_what_install_writes() -> None:
    assert UNIT.read_text() == render_unit()
    assert CONTRIB_DROPIN.read_text() == SUDO_DROPIN


def test_generated_sudoers_for_the_example_config_is_contribs() -> None:
    text = render_sudoers(grants(specs(SUDO_CONFIG)), "sysmenu", "/etc/sysmenu/config.yaml")
    assert text is not None
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert sorted(rules) == sorted(sudoers_rules())  # the same rules as the example, in any order
    assert f"Cmnd_Alias SYSMENU_COMMANDS = {', '.join(ALLOWED)}" in rules


def test_generated_sudoers_is_exact_and_passes_visudo(tmp_path: Path) -> None:
    config = """\
system:
  actions:
    - action: noargs
      command: sudo -n /usr/bin/id
    - action: odd
      command: "sudo -n /usr/bin/printf '%s,%s' a:b c=d *"
    - action: as-octoprint
      command: sudo -n -u octoprint /usr/bin/touch /tmp/x; echo done
    - action: shell
      command: sudo -s
"""
    grant = grants(specs(config))
    text = render_sudoers(grant, "sysmenu", "test")
    assert text is not None
    assert 'Cmnd_Alias SYSMENU_COMMANDS = /usr/bin/id "", /usr/bin/printf %s\\,%s a\\:b c\\=d \\*' in text
    assert "Cmnd_Alias SYSMENU_COMMANDS_2 = /usr/bin/touch /tmp/x" in text
    assert "sysmenu ALL=(root) NOPASSWD: SYSMENU_COMMANDS\n" in text
    assert "sysmenu ALL=(octoprint) NOPASSWD: SYSMENU_COMMANDS_2\n" in text
    assert grant.problems == ["custom:shell: `sudo` with -i, -s or -e cannot be allowed exactly"]
    if VISUDO is None:
        pytest.skip("sudo is not installed (scripts/test installs it)")
    file = tmp_path / "sudoers"
    file.write_text(text)
    assert visudo_check(str(file)) is None
    file.write_text("sysmenu ALL=(root NOPASSWD: x\n")
    assert visudo_check(str(file)) is not None


def polkit_answers(
    rule: Path, cases: list[tuple[str, str, dict[str, str]]], tmp_path: Path
) -> list[str | None]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed: the rule's JavaScript cannot be evaluated")
    harness = tmp_path / "harness.js"
    harness.write_text(POLKIT_HARNESS)
    result = subprocess.run(
        [node, str(harness), str(rule), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers: list[str | None] = json.loads(result.stdout)
    return answers


def test_generated_polkit_rule_grants_what_contribs_does(tmp_path: Path) -> None:
    text = render_polkit(grants(specs(POLKIT_CONFIG)), "sysmenu", "test")
    assert text is not None
    generated = tmp_path / "50-sysmenu.rules"
    generated.write_text(text)
    manage = "org.freedesktop.systemd1.manage-units"
    cases = [
        ("sysmenu", "org.freedesktop.login1.power-off", {}),
        ("sysmenu", "org.freedesktop.login1.power-off-multiple-sessions", {}),
        ("sysmenu", "org.freedesktop.login1.reboot", {}),
        ("sysmenu", manage, {"unit": "octoprint.service", "verb": "restart"}),
        ("sysmenu", manage, {"unit": "octoprint.service", "verb": "stop"}),
        ("sysmenu", manage, {"unit": "ssh.service", "verb": "restart"}),
        ("sysmenu", "org.freedesktop.login1.halt", {}),
        ("pi", "org.freedesktop.login1.power-off", {}),
    ]
    expected = ["yes"] * 4 + [None] * 4
    assert polkit_answers(generated, cases, tmp_path) == expected
    assert polkit_answers(POLKIT, cases, tmp_path) == expected


def install(root: Path, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    """`sysmenu service ARGS --root ROOT`: the click command in this process (as the
    installed program would run it: `--use-running` links to the same SYSMENU), or with
    `process` the installed program itself in a process of its own."""
    argv = ["service", *args, "--root", str(root)]
    if process:
        return subprocess.run([SYSMENU, *argv], capture_output=True, text=True, timeout=120, check=False)
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, result.stderr)


def test_dry_run_prints_everything_and_does_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(SUDO_CONFIG)
    root = tmp_path / "root"
    result = install(root, "install", "--dry-run", "--config", str(config), "--use-running")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"would write {root}/etc/sysmenu/config.yaml (0644)" in out
    assert f"would write {root}/etc/systemd/system/sysmenu.service (0644)" in out
    assert (
        f"    | ExecStart={SYSMENU} --config /etc/sysmenu/config.yaml --data-dir /var/lib/sysmenu serve"
        in out
    )
    assert f"would write {root}/etc/systemd/system/sysmenu.service.d/sudo.conf (0644)" in out
    assert f"would write {root}/etc/sudoers.d/sysmenu (0440)" in out
    assert "    | sysmenu ALL=(root) NOPASSWD: SYSMENU_COMMANDS" in out
    assert "50-sysmenu.rules (0644)" not in out  # no command asks systemd without sudo
    assert f"would make {root}/var/lib/sysmenu (0700, owned by sysmenu)" in out
    assert "systemd: left alone under --root" in out
    assert not root.exists()
    # without --root, as a user would first try it: nothing on this machine changes either
    before = {p: Path(p).exists() for p in ("/etc/sudoers.d/sysmenu", "/etc/systemd/system/sysmenu.service")}
    real = subprocess.run(
        [SYSMENU, "service", "install", "--dry-run", "--venv", "/opt/sysmenu-test"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert real.returncode == 0, real.stderr
    assert "would create a venv in /opt/sysmenu-test with " in real.stdout
    python = real.stdout.split("would create a venv in /opt/sysmenu-test with ")[1].split()[0]
    assert not python.startswith(("/root/", "/home/"))  # where the unit's ProtectHome=yes hides it
    assert "would link /usr/local/bin/sysmenu -> /opt/sysmenu-test/bin/sysmenu" in real.stdout
    assert {p: Path(p).exists() for p in before} == before
    assert not Path("/opt/sysmenu-test").exists()


def test_install_into_a_root_file_by_file_then_regenerate_then_uninstall(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(SUDO_CONFIG)
    root = tmp_path / "root"
    result = install(root, "install", "--config", str(config), "--use-running", process=True)
    assert result.returncode == 0, result.stdout + result.stderr
    unit = root / "etc/systemd/system/sysmenu.service"
    assert unit.read_text() == render_unit(SYSMENU) and mode(unit) == 0o644
    dropin = root / "etc/systemd/system/sysmenu.service.d/sudo.conf"
    assert dropin.read_text() == SUDO_DROPIN
    sudoers = root / "etc/sudoers.d/sysmenu"
    assert mode(sudoers) == 0o440
    assert sorted(r for r in sudoers.read_text().splitlines() if r and r[0] != "#") == sorted(sudoers_rules())
    assert not list(sudoers.parent.glob(".*"))  # no leftover temp file
    if VISUDO is not None:
        assert visudo_check(str(sudoers)) is None
    assert (root / "etc/sysmenu/config.yaml").read_text() == SUDO_CONFIG
    assert mode(root / "etc/sysmenu/config.yaml") == 0o644
    assert mode(root / "var/lib/sysmenu") == 0o700
    assert os.readlink(root / "usr/local/bin/sysmenu") == SYSMENU
    assert not (root / "etc/polkit-1/rules.d/50-sysmenu.rules").exists()
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        verify = subprocess.run(
            [analyze, "verify", "--man=no", str(unit)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr

    # the commands change to polkit ones: the rules follow, the sudo variant goes
    config.write_text(POLKIT_CONFIG)
    result = install(root, "install", "--config", str(config), "--use-running")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not sudoers.exists() and not dropin.exists()
    rule = root / "etc/polkit-1/rules.d/50-sysmenu.rules"
    assert 'action.lookup("unit") === "octoprint.service"' in rule.read_text()
    # re-run without --config keeps the installed config and regenerates from it
    result = install(root, "install", "--use-running")
    assert result.returncode == 0 and "keep " in result.stdout
    assert (root / "etc/sysmenu/config.yaml").read_text() == POLKIT_CONFIG

    result = install(root, "uninstall")
    assert result.returncode == 0, result.stdout + result.stderr
    for gone in (unit, rule, root / "usr/local/bin/sysmenu", dropin.parent):
        assert not gone.exists() and not gone.is_symlink(), gone
    assert (root / "etc/sysmenu/config.yaml").exists() and (root / "var/lib/sysmenu").exists()
    result = install(root, "uninstall", "--purge")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (root / "etc/sysmenu").exists() and not (root / "var/lib/sysmenu").exists()


def test_rules_visudo_rejects_are_not_installed(tmp_path: Path) -> None:
    if VISUDO is None:
        pytest.skip("sudo is not installed (scripts/test installs it)")
    config = tmp_path / "config.yaml"
    config.write_text(
        "system:\n  actions:\n    - action: x\n      command: sudo -n -u 'two words' /usr/bin/id\n"
    )
    root = tmp_path / "root"
    result = install(root, "install", "--config", str(config), "--use-running")
    assert result.returncode == 1
    assert "sudoers.d/sysmenu: rejected, not installed" in result.stderr
    assert not (root / "etc/sudoers.d/sysmenu").exists()
    assert not list((root / "etc/sudoers.d").glob(".*"))


def test_install_refuses_a_bad_config_and_non_root(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sysmenu:\n  port: many\n")
    r = CliRunner().invoke(
        main, ["service", "install", "--dry-run", "--config", str(bad), "--root", str(tmp_path)]
    )
    assert r.exit_code == 1 and "sysmenu.port = 'many'" in r.output
    assert list(tmp_path.iterdir()) == [bad]
