"""The shipped least-privilege examples: systemd unit, sudoers drop-in, polkit rule.

Each is checked by the tool that will read it where that tool is installed
(systemd-analyze, visudo, node for polkit's JavaScript), and always by Python for
the promises docs/security.md makes about it.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib/systemd/sysmenu.service"
SUDO_DROPIN = ROOT / "contrib/systemd/sysmenu.service.d/sudo.conf"
SUDOERS = ROOT / "contrib/sudoers.d/sysmenu"
POLKIT = ROOT / "contrib/polkit/50-sysmenu.rules"

# What the examples allow, and nothing more: the same three in each.
ALLOWED = [
    "/usr/bin/systemctl poweroff",
    "/usr/bin/systemctl reboot",
    "/usr/bin/systemctl restart octoprint",
]


def unit_sections(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd); the key check still runs")
    # verify insists that ExecStart names an executable: point it at this checkout's sysmenu.
    sysmenu = Path(sys.executable).parent / "sysmenu"
    unit = tmp_path / "sysmenu.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/sysmenu", str(sysmenu)))
    dropins = tmp_path / "sysmenu.service.d"
    dropins.mkdir()
    shutil.copy(SUDO_DROPIN, dropins / "sudo.conf")  # verify reads drop-ins beside the unit
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Unknown keys and bad values are only warnings (exit 0): none may mention our files.
    ours = [line for line in output.splitlines() if str(tmp_path) in line or "sysmenu" in line]
    assert ours == [], output


def test_systemd_unit_is_hardened_as_documented() -> None:
    service = dict(unit_sections(UNIT)["Service"])
    expected = {
        "User": "sysmenu",
        "Group": "sysmenu",
        "StateDirectory": "sysmenu",
        "StateDirectoryMode": "0700",
        "UMask": "0077",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictSUIDSGID": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces": "yes",
        "SystemCallFilter": "@system-service",
    }
    assert {k: service.get(k) for k in expected} == expected
    assert service["KillMode"] in ("mixed", "control-group")
    argv = shlex.split(service["ExecStart"])
    assert argv[-1] == "serve"
    assert argv[argv.index("--data-dir") + 1] == "/var/lib/sysmenu"  # = StateDirectory, writable
    assert argv[argv.index("--config") + 1].startswith("/etc/sysmenu/")  # read-only for sysmenu
    assert "ReadWritePaths" not in service  # nothing but the state directory is writable
    assert "AF_NETLINK" not in service["RestrictAddressFamilies"]


def test_sudo_dropin_lifts_exactly_what_sudo_needs() -> None:
    service = dict(unit_sections(SUDO_DROPIN)["Service"])
    assert service["NoNewPrivileges"] == "no"  # sudo is set-user-ID: NoNewPrivileges=yes breaks it
    assert set(service["CapabilityBoundingSet"].split()) == {"CAP_SETUID", "CAP_SETGID", "CAP_AUDIT_WRITE"}
    assert set(service) == {
        "NoNewPrivileges",
        "CapabilityBoundingSet",
        "RestrictAddressFamilies",
        "ReadWritePaths",
    }


def sudoers_rules() -> list[str]:
    """The sudoers example's non-comment lines, continuations joined."""
    text = SUDOERS.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_sudoers_example_passes_visudo() -> None:
    # SYSMENU_VISUDO: a visudo from elsewhere (such as unpacked from Debian's sudo package)
    visudo = os.environ.get("SYSMENU_VISUDO") or shutil.which("visudo", path="/usr/sbin:/sbin:/usr/bin")
    if visudo is None:
        pytest.skip("sudo is not installed (visudo comes with it); the Python check of the rules still runs")
    result = subprocess.run(
        [visudo, "-cf", str(SUDOERS)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sudoers_example_allows_exactly_the_commands() -> None:
    assert SUDOERS.read_text().endswith("\n")  # sudo ignores a last line without a newline
    rules = sudoers_rules()
    aliases = {}
    specs = []
    for rule in rules:
        if rule.startswith("Cmnd_Alias"):
            name, _, commands = rule.removeprefix("Cmnd_Alias").partition("=")
            aliases[name.strip()] = [c.strip() for c in commands.split(",")]
        elif rule.startswith("Defaults"):
            assert rule.startswith("Defaults:sysmenu "), rule  # touches no one else's defaults
        else:
            specs.append(rule)
    assert specs == ["sysmenu ALL=(root) NOPASSWD: SYSMENU_COMMANDS"]
    assert aliases == {"SYSMENU_COMMANDS": ALLOWED}
    for command in ALLOWED:
        assert command.startswith("/")  # absolute: no PATH lookup
        assert not re.search(r"[*?\[\]\\]|\bALL\b|sudoedit", command)  # no wildcards, no escapes
        # an argument list is given, so no other arguments are allowed
        assert len(command.split()) > 1
    # the config lines it suggests run the same commands through sudo, never prompting
    suggested = re.findall(r"#\s+\w+Command: sudo -n (.+)", SUDOERS.read_text())
    assert suggested == ALLOWED


POLKIT_HARNESS = """
const fs = require("fs");
const rules = [];
const polkit = {Result: {YES: "yes", NO: "no", NOT_HANDLED: null}, addRule: (f) => rules.push(f)};
eval(fs.readFileSync(process.argv[2], "utf8"));
const cases = JSON.parse(process.argv[3]);
const answers = cases.map(([user, id, details]) => {
    const action = {id: id, lookup: (key) => details[key]};
    for (const rule of rules) {
        const result = rule(action, {user: user});
        if (result !== null && result !== undefined) return result;
    }
    return null;
});
process.stdout.write(JSON.stringify(answers));
"""


def test_polkit_rule_grants_exactly_the_commands(tmp_path: Path) -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip(
            "node is not installed: the rule's JavaScript cannot be evaluated (text check below runs)"
        )
    manage = "org.freedesktop.systemd1.manage-units"
    cases = [
        ("sysmenu", "org.freedesktop.login1.power-off", {}),
        ("sysmenu", "org.freedesktop.login1.reboot", {}),
        ("sysmenu", "org.freedesktop.login1.reboot-multiple-sessions", {}),
        ("sysmenu", manage, {"unit": "octoprint.service", "verb": "restart"}),
        # everything else is left to polkit's defaults (for a system user: no)
        ("sysmenu", manage, {"unit": "octoprint.service", "verb": "stop"}),
        ("sysmenu", manage, {"unit": "ssh.service", "verb": "restart"}),
        ("sysmenu", "org.freedesktop.login1.set-reboot-to-firmware-setup", {}),
        ("sysmenu", "org.freedesktop.packagekit.package-install", {}),
        ("sysmenu", "org.freedesktop.systemd1.manage-unit-files", {}),
        ("pi", "org.freedesktop.login1.power-off", {}),
        ("pi", manage, {"unit": "octoprint.service", "verb": "restart"}),
    ]
    harness = tmp_path / "harness.js"
    harness.write_text(POLKIT_HARNESS)
    result = subprocess.run(
        [node, str(harness), str(POLKIT), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["yes"] * 4 + [None] * 7


def test_polkit_rule_text() -> None:
    text = POLKIT.read_text()
    assert 'subject.user !== "sysmenu"' in text
    # ES5 only: polkit's JavaScript engine (duktape) has no let, const or arrow functions
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    assert not re.search(r"\b(let|const)\b|=>", code)
    suggested = re.findall(r"//\s+\w+Command: (.+)", text)
    assert suggested == ALLOWED  # the same commands as the sudoers variant, without sudo


SOCKET = ROOT / "contrib/systemd/sysmenu.socket"


def test_socket_unit_passes_systemd_analyze_verify_beside_the_service(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd); the key check still runs")
    sysmenu = Path(sys.executable).parent / "sysmenu"
    (tmp_path / "sysmenu.service").write_text(
        UNIT.read_text().replace("/usr/local/bin/sysmenu", str(sysmenu))
    )
    shutil.copy(SOCKET, tmp_path / "sysmenu.socket")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "sysmenu.socket")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert [line for line in output.splitlines() if str(tmp_path) in line or "sysmenu" in line] == [], output


def test_socket_activated_service_notifies_and_exits_when_idle() -> None:
    socket_unit = unit_sections(SOCKET)
    assert dict(socket_unit["Socket"])["ListenStream"] == "127.0.0.1:5000"  # sysmenu's default address
    assert dict(socket_unit["Install"])["WantedBy"] == "sockets.target"
    assert "Accept" not in dict(socket_unit["Socket"])  # one sysmenu for all connections
    service = unit_sections(UNIT)["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"  # the commands sysmenu runs cannot speak for it
    assert int(service["WatchdogSec"]) > 0
    environment = [line for line in UNIT.read_text().splitlines() if line.startswith("Environment=")]
    assert "Environment=SYSMENU_IDLE_EXIT=60" in environment
