"""Whether each configured command can actually run, as the user the service runs as.

"The reboot button does nothing" is nearly always sudo asking for a password or polkit
saying no. For every command this checks, as that user: the programs exist, sudo would run
the sudo steps without a password (``sudo -n -l``, and ``sudo -n -ll`` for NOPASSWD), polkit
would allow the systemctl steps (``pkcheck``, where polkit is installed), and that systemd is
there to ask. `sysmenu doctor` adds the config, the data directory and the port; the server
shows the command verdicts in ``GET /api/status`` and on the page.

Probes run as the checked user: when root checks another user, each probe is started with
that user's uid, gid and groups, so its answer is that user's answer.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalogue import CommandSpec
from .commandline import PolkitAction, Step, analyse
from .environment import DEFAULT_PATH
from .mqtt_settings import MqttSettings
from .sudoers_list import nopasswd

PROBE_TIMEOUT = 10.0
_INSTALL = "`sysmenu service install` writes the rules for exactly the configured commands"


@dataclass(frozen=True)
class Verdict:
    """One row of the doctor's table: can `subject` work, and if not, why and what to do."""

    subject: str
    runnable: bool | None  # None: could not tell
    why: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"runnable": self.runnable, "why": self.why or None, "fix": self.fix or None}


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def current(cls) -> Account:
        uid = os.getuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return cls(name, uid, os.getgid(), tuple(os.getgroups()))

    @classmethod
    def named(cls, name: str) -> Account:
        entry = pwd.getpwnam(name)  # KeyError: no such user
        return cls(name, entry.pw_uid, entry.pw_gid, tuple(os.getgrouplist(name, entry.pw_gid)))


class Prober:
    """Runs probe commands as `account`; `no_new_privileges`: set-user-ID programs (sudo)
    cannot gain privileges where the service runs (the unit's NoNewPrivileges=yes)."""

    def __init__(self, account: Account, no_new_privileges: bool = False) -> None:
        self.account = account
        self.no_new_privileges = no_new_privileges
        self.switch = account.uid != os.getuid()
        if self.switch and os.geteuid() != 0:
            raise PermissionError(f"only root can check as user {account.name}")

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        env = {"LANG": "C", "LC_ALL": "C", "PATH": os.environ.get("PATH", DEFAULT_PATH)}
        extra: dict[str, Any] = {}
        if self.switch:
            env["PATH"] = DEFAULT_PATH
            a = self.account
            extra = {"user": a.uid, "group": a.gid, "extra_groups": list(a.groups), "cwd": "/"}
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=env,
                stdin=subprocess.DEVNULL,
                timeout=PROBE_TIMEOUT,
                check=False,
                **extra,
            )
        except FileNotFoundError:
            return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: not found")
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]} did not answer in time")

    def which(self, program: str) -> str | None:
        if not self.switch:
            return shutil.which(program, path=os.environ.get("PATH", DEFAULT_PATH))
        result = self.run(["/bin/sh", "-c", 'command -v -- "$1"', "sh", program])
        return result.stdout.strip() or None if result.returncode == 0 else None


def no_new_privileges() -> bool:
    """Whether this process runs with NoNewPrivileges (set-user-ID programs cannot gain root)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("NoNewPrivs:"):
                return line.split()[1] == "1"
    except OSError:
        pass
    return False


def _sudo_verdict(step: Step, prober: Prober) -> Verdict | None:
    assert step.sudo is not None
    user = prober.account.name
    if prober.account.uid == 0:
        return None  # sudo never asks root for a password
    if prober.no_new_privileges:
        return Verdict(
            "",
            False,
            "the service runs with NoNewPrivileges=yes, so sudo cannot gain root",
            "add contrib/systemd/sysmenu.service.d/sudo.conf (`sysmenu service install` does), or use polkit",
        )
    runas = [
        *(["-u", step.sudo.user] if step.sudo.user else []),
        *(["-g", step.sudo.group] if step.sudo.group else []),
    ]
    listed = prober.run(["sudo", "-n", "-l", *runas, step.program, *step.args])
    message = (listed.stderr.strip().splitlines() or [""])[-1].removeprefix("sudo: ")
    if listed.returncode == 127 and "not found" in message and "sudo" in message.split(":")[0]:
        return Verdict(
            "", False, "sudo is not installed", "install sudo, or use polkit (no sudo in the command)"
        )
    if "password is required" in message:
        return Verdict("", False, f"sudo requires a password for user {user}", _INSTALL)
    if "command not found" in message:
        return Verdict(
            "", False, f"{step.program} is not installed (sudo found no such command)", "install it"
        )
    if listed.returncode != 0:
        why = message or f"sudoers does not allow user {user} to run `{step.shown()}`"
        return Verdict("", False, why, _INSTALL)
    path = listed.stdout.strip().splitlines()[0] if listed.stdout.strip() else step.program
    free = nopasswd(prober.run(["sudo", "-n", "-ll"]).stdout, step.sudo.user or "root", path, step.args)
    if free is False:
        return Verdict("", False, f"sudo requires a password for user {user}", _INSTALL)
    if free is None:
        return Verdict("", None, "sudo allows it, but whether without a password could not be read", "")
    return None


def _subject(pid: int) -> str:
    """pkcheck's `pid,start-time,uid` for a process (the start time guards against pid reuse)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    start = stat.rsplit(")", 1)[1].split()[19]
    return f"{pid},{start},{os.stat(f'/proc/{pid}').st_uid}"


def _pkcheck(action: PolkitAction, prober: Prober) -> subprocess.CompletedProcess[str]:
    details = [w for key, value in action.details for w in ("--detail", key, value)]
    if not prober.switch:
        argv = ["pkcheck", "--action-id", action.action_id, "--process", _subject(os.getpid()), *details]
        return prober.run(argv)
    # Root asks about a process of the user: only root may pass details (unit, verb).
    a = prober.account
    holder = subprocess.Popen(
        ["sleep", "60"], user=a.uid, group=a.gid, extra_groups=list(a.groups), stdin=subprocess.DEVNULL
    )
    try:
        argv = ["pkcheck", "--action-id", action.action_id, "--process", _subject(holder.pid), *details]
        return subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([], 124, "", "pkcheck did not answer in time")
    finally:
        holder.kill()
        holder.wait()


def _polkit_verdict(step: Step, prober: Prober) -> Verdict | None:
    actions = step.polkit()
    if not actions:
        return None
    if not os.path.isdir("/run/systemd/system"):
        return Verdict("", False, "systemd is not running on this machine", "run sysmenu where systemd runs")
    if prober.account.uid == 0:
        return None  # root needs no polkit
    if prober.which("pkcheck") is None:
        return Verdict(
            "", False, "polkit is not installed (no pkcheck)", f"install polkitd; {_INSTALL}; or use sudo"
        )
    for action in actions:
        result = _pkcheck(action, prober)
        if result.returncode == 0:
            continue
        if result.returncode in (1, 2, 3):
            why = f"polkit does not allow user {prober.account.name} to {action.text}"
            return Verdict("", False, why, _INSTALL)
        problem = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return Verdict("", None, f"cannot ask polkit: {problem}", "run `sysmenu doctor` as root")
    return None


def command_verdict(spec: CommandSpec, prober: Prober) -> Verdict:
    """Whether `spec` can run for the prober's user."""
    subject = f"{spec.source}:{spec.action}"
    line = spec.command_line
    if not line:
        return Verdict(subject, False, "no command line in the config", "give it a `command`")
    analysis = analyse(line)
    if spec.arguments:  # sudo and polkit answer for exact arguments, known only when it runs
        analysis.unchecked.append("its arguments are only known when it runs: sudo and polkit not asked")
    for step in analysis.steps:
        if step.is_builtin:
            continue
        if spec.arguments:
            program = "sudo" if step.sudo is not None else step.program
            if prober.which(program) is None:
                why = f"{program} is not installed (or not executable for {prober.account.name})"
                return Verdict(subject, False, why, f"install {program} or fix the command line")
            continue
        program = "sudo" if step.sudo is not None else step.program
        if prober.which(program) is None:
            return Verdict(
                subject,
                False,
                f"{program} is not installed (or not executable for {prober.account.name})",
                f"install {program} or fix the command line",
            )
        verdict = _sudo_verdict(step, prober) if step.sudo is not None else _polkit_verdict(step, prober)
        if verdict is not None:
            return Verdict(subject, verdict.runnable, verdict.why, verdict.fix)
    if analysis.unchecked:
        return Verdict(subject, True, "not checked: " + "; ".join(analysis.unchecked))
    return Verdict(subject, True)


def command_verdicts(specs: list[CommandSpec], prober: Prober) -> list[Verdict]:
    return [command_verdict(s, prober) for s in specs if not s.is_divider]


def listen_problem(host: str, port: int) -> str | None:
    """Why sysmenu could not listen on host:port now, or None (bound and released at once)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


PROBE_TIMEOUT = 3.0  # seconds a program on the port has to answer "are you sysmenu?"


def _is_sysmenu(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    import json
    import urllib.request

    from .hosts import local_url

    try:
        with urllib.request.urlopen(f"{local_url(host, port)}/api/openapi.json", timeout=timeout) as response:
            return bool(json.load(response).get("info", {}).get("title") == "sysmenu")
    except (OSError, ValueError):
        return False


def port_verdict(host: str, port: int, account: Account, probe_timeout: float = PROBE_TIMEOUT) -> Verdict:
    subject = f"port {host}:{port}"
    if account.uid != 0 and port < _unprivileged_port_start():
        why = f"port {port} is privileged: user {account.name} cannot listen on it"
        return Verdict(subject, False, why, "use a port above 1023 (sysmenu.port)")
    problem = listen_problem(host, port)
    if problem is None:
        return Verdict(subject, True, "free")
    if _is_sysmenu(host, port, probe_timeout):
        return Verdict(subject, True, "in use by sysmenu (running)")
    return Verdict(subject, False, problem, "stop what uses it, or choose another sysmenu.port")


def _unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


_HIDDEN_BY_PROTECT_HOME = ("/home", "/root", "/run/user")


def program_verdict(program: str, prober: Prober, protect_home: bool) -> Verdict:
    """Whether the service's ExecStart (sysmenu itself) can start for the user."""
    subject = f"service program {program}"
    fix = "`sysmenu service install` (without --use-running) makes a venv the service can run"
    if protect_home:
        for path in (program, os.path.realpath(program), _interpreter(program)):
            hidden = [d for d in _HIDDEN_BY_PROTECT_HOME if path == d or path.startswith(d + "/")]
            if hidden:
                return Verdict(subject, False, f"{path} is under {hidden[0]}, hidden by ProtectHome=", fix)
    result = prober.run([program, "--version"])
    if result.returncode != 0:
        problem = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return Verdict(subject, False, f"does not start for user {prober.account.name}: {problem}", fix)
    return Verdict(subject, True)


def _interpreter(program: str) -> str:
    """The real path of a script's interpreter (its #! line), or ""."""
    try:
        with open(program, "rb") as file:
            first = file.readline(4096)
    except OSError:
        return ""
    if not first.startswith(b"#!"):
        return ""
    words = first[2:].decode(errors="replace").split()
    return os.path.realpath(words[0]) if words else ""


def data_dir_verdict(path: Path, prober: Prober, made_by_systemd: bool = False) -> Verdict:
    """The data directory (or, while it does not exist, the directory it would be made in)
    and the database in it must be writable for the user."""
    subject = f"data dir {path}"
    if made_by_systemd and not path.exists():
        return Verdict(subject, True, "systemd creates it at start (StateDirectory=)")
    script = (
        'd=$1; while [ ! -e "$d" ]; do d=$(dirname "$d"); done; '
        '[ -d "$d" ] && [ -w "$d" ] && [ -x "$d" ] && { [ ! -e "$1/sysmenu.db" ] || [ -w "$1/sysmenu.db" ]; }'
    )
    if prober.run(["/bin/sh", "-c", script, "sh", str(path)]).returncode == 0:
        return Verdict(subject, True)
    user = prober.account.name
    quoted = shlex.quote(str(path))
    fix = f"mkdir -p {quoted} && chown -R {user} {quoted} (or choose another sysmenu.data_dir)"
    return Verdict(subject, False, f"not writable for user {user}", fix)


def broker_verdict(settings: MqttSettings) -> Verdict:
    """Whether the broker of ``sysmenu.mqtt`` can be reached and takes the login, TLS files
    and password included (with a client id of its own: a running server stays connected)."""
    import asyncio

    import aiomqtt  # only with sysmenu.mqtt

    from .fleet import client
    from .mqtt_topics import refuses_v5

    subject = f"mqtt broker {settings.host}:{settings.port}"

    async def connect(protocol: aiomqtt.ProtocolVersion) -> None:
        async with client(settings, protocol):
            pass

    try:
        try:
            asyncio.run(connect(aiomqtt.ProtocolVersion.V5))
        except aiomqtt.MqttError as exc:
            if not refuses_v5(exc):
                raise
            asyncio.run(connect(aiomqtt.ProtocolVersion.V311))
            return Verdict(subject, True, "MQTT 3.1.1 only: requests get no answers, `fleet run` cannot work")
    except (aiomqtt.MqttError, OSError) as exc:
        fix = "check sysmenu.mqtt (host, port, TLS files, username, password) and the broker's users"
        return Verdict(subject, False, str(exc) or type(exc).__name__, fix)
    return Verdict(subject, True, f"logged in as {settings.username}" if settings.username else "")
