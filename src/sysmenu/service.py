"""Installing sysmenu as a system service, and removing it again.

`install_plan` lists every step (`Step`: what it does, and the function that does it) so
that ``--dry-run`` prints exactly what a real run does. Steps: the ``sysmenu`` system user,
sysmenu in a venv of its own (or the running one), ``/usr/local/bin/sysmenu``, the config in
``/etc/sysmenu``, the state directory, the hardened unit, the sudoers drop-in and polkit rule
generated from the config (each only when a command needs it, removed when none does; the
sudoers file is checked with ``visudo -cf`` before it is put in place), then systemd. Running
it again after the config changed regenerates the rules. ``root`` installs under another
directory (for tests and images): users and systemd are then left alone.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import rules, unit
from .catalogue import Catalogue
from .config import DEMO_CONFIG, parse
from .errors import ConfigError
from .unit import DEFAULT_VENV

UNIT_PATH = "/etc/systemd/system/sysmenu.service"
DROPIN_PATH = "/etc/systemd/system/sysmenu.service.d/sudo.conf"
SUDOERS_PATH = "/etc/sudoers.d/sysmenu"
POLKIT_PATH = "/etc/polkit-1/rules.d/50-sysmenu.rules"
LINK_PATH = unit.DEFAULT_SYSMENU
_MARKER = ".sysmenu-service"  # in a venv this module made: uninstall removes only such a venv
_HIDDEN = ("/home", "/root", "/run/user")  # what the unit's ProtectHome=yes hides from the service


class ServiceError(Exception):
    """An install or uninstall step that cannot be done; nothing after it was done."""


@dataclass
class Step:
    text: str
    action: Callable[[], None] | None = None  # None: nothing to do (shown as a note)
    content: str = ""  # a file's new content, shown by --dry-run


@dataclass
class Options:
    root: Path = Path("/")
    config: Path | None = None  # the config to install; None: keep the installed one, else the demo
    venv: str | None = DEFAULT_VENV  # None: use the running sysmenu
    user: str = unit.SERVICE_USER

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def real_root(self) -> bool:
        return self.root.resolve() == Path("/")


def _write(path: Path, text: str, mode: int, check: Callable[[Path], str | None] | None = None) -> None:
    """Write atomically; `check` sees the new file (named with a dot: sudo skips such names)
    before it replaces the old one, and a problem it finds stops the install."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = path.with_name(f".{path.name}.new")
    new.write_text(text)
    os.chmod(new, mode)
    problem = check(new) if check is not None else None
    if problem is not None:
        new.unlink()
        raise ServiceError(f"{path}: rejected, not installed: {problem}")
    os.replace(new, path)


def _remove(path: Path) -> Step | None:
    if not path.exists() and not path.is_symlink():
        return None
    return Step(f"remove {path}", path.unlink)


def _run(*argv: str) -> Callable[[], None]:
    def run() -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise ServiceError(f"{' '.join(argv)} failed: {(result.stdout + result.stderr).strip()}")

    return run


def _config_text(options: Options) -> tuple[str, str | None]:
    """The config text to install and the file it comes from (None: keep what is installed)."""
    installed = options.at(unit.DEFAULT_CONFIG)
    if options.config is not None:
        return options.config.read_text(encoding="utf-8"), str(options.config)
    if installed.exists():
        return installed.read_text(encoding="utf-8"), None
    return DEMO_CONFIG, "the built-in demo"


def _sysmenu_steps(options: Options) -> tuple[list[Step], str]:
    """Steps that put sysmenu in place, and the path the unit runs."""
    if options.venv is None:
        running = str(Path(sys.executable).parent / "sysmenu")
        steps = [Step(f"use the running sysmenu: {running}")]
        if _hidden(sys.executable):
            steps.append(
                Step(
                    f"warning: {running} runs {os.path.realpath(sys.executable)}, which the unit's "
                    "ProtectHome=yes hides from the service: install without --use-running"
                )
            )
        return steps, running
    venv = options.at(options.venv)
    source = _install_source()
    python = _venv_python()
    steps = [
        Step(f"create a venv in {venv} with {python}", _run(python, "-m", "venv", str(venv))),
        Step(
            f"install {source} into it", _run(str(venv / "bin/python"), "-m", "pip", "install", "-q", source)
        ),
        Step(f"mark {venv} as made by `sysmenu service install`", lambda: (venv / _MARKER).touch()),
    ]
    return steps, f"{options.venv.rstrip('/')}/bin/sysmenu"


def _hidden(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == d or real.startswith(d + "/") for d in _HIDDEN)


def _venv_python() -> str:
    """A Python the service can run: this one, unless it lives where ProtectHome=yes hides it
    (pyenv, a build in a home directory); then Debian's python3."""
    base = str(getattr(sys, "_base_executable", sys.executable))
    if not _hidden(base):
        return base
    return shutil.which("python3", path="/usr/bin:/bin") or base


def _install_source() -> str:
    """What pip installs: the checkout the running sysmenu comes from, else this version."""
    import json
    from importlib import metadata

    from . import __version__

    try:
        direct = metadata.distribution("sysmenu").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    url = json.loads(direct).get("url", "") if direct else ""
    return url.removeprefix("file://") if url.startswith("file://") else f"sysmenu=={__version__}"


def _user_steps(options: Options) -> list[Step]:
    if not options.real_root:
        return [Step(f"user {options.user}: not created under --root {options.root}")]
    try:
        pwd.getpwnam(options.user)
        return [Step(f"user {options.user} exists")]
    except KeyError:
        argv = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            unit.DEFAULT_DATA_DIR,
        ]
        argv += ["--shell", "/usr/sbin/nologin", options.user]
        return [Step(f"create system user {options.user}: {' '.join(argv)}", _run(*argv))]


def _data_dir_step(options: Options) -> Step:
    path = options.at(unit.DEFAULT_DATA_DIR)

    def make() -> None:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _user_exists(options.user):  # under --root too, when this machine has the user
            entry = pwd.getpwnam(options.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(path, 0o700)

    return Step(f"make {path} (0700, owned by {options.user})", make)


def _file_step(
    options: Options,
    where: str,
    text: str | None,
    mode: int,
    check: Callable[[Path], str | None] | None = None,
) -> Step | None:
    path = options.at(where)
    if text is None:
        return _remove(path)
    return Step(f"write {path} ({mode:04o})", lambda: _write(path, text, mode, check), text)


def _sudoers_check(path: Path) -> str | None:
    return rules.visudo_check(str(path))


def install_plan(options: Options) -> list[Step]:
    """Every step of `sysmenu service install`, in order; nothing is done yet."""
    text, origin = _config_text(options)
    try:
        config = parse(text, origin or unit.DEFAULT_CONFIG)
    except ConfigError as exc:
        raise ServiceError(f"invalid configuration:\n{exc}") from None
    catalogue = Catalogue(config)
    grant = rules.grants(s for specs in catalogue.specs.values() for s in specs)
    source = unit.DEFAULT_CONFIG
    sysmenu_steps, executable = _sysmenu_steps(options)
    steps: list[Step | None] = [*_user_steps(options), *sysmenu_steps]
    link = options.at(LINK_PATH)
    if executable != LINK_PATH and (link.is_symlink() or not link.exists()):
        steps.append(Step(f"link {link} -> {executable}", lambda: _link(link, executable)))
    if origin is None:
        steps.append(Step(f"keep {options.at(unit.DEFAULT_CONFIG)} (the commands below come from it)"))
    else:
        steps.append(_file_step(options, unit.DEFAULT_CONFIG, text, 0o644))
    steps.append(_data_dir_step(options))
    steps.append(_file_step(options, UNIT_PATH, unit.render_unit(executable, user=options.user), 0o644))
    sudoers = rules.render_sudoers(grant, options.user, source)
    steps.append(_file_step(options, DROPIN_PATH, unit.SUDO_DROPIN if sudoers else None, 0o644))
    steps.append(_file_step(options, SUDOERS_PATH, sudoers, 0o440, _sudoers_check))
    steps.append(_file_step(options, POLKIT_PATH, rules.render_polkit(grant, options.user, source), 0o644))
    steps += [Step(f"warning: {problem}") for problem in grant.problems]
    steps += _systemd_steps(options, ["daemon-reload"], ["enable", "sysmenu"], ["restart", "sysmenu"])
    return [s for s in steps if s is not None]


def _link(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def _systemd_steps(options: Options, *commands: list[str]) -> list[Step]:
    if not options.real_root:
        return [Step(f"systemd: left alone under --root {options.root}")]
    if not os.path.isdir("/run/systemd/system"):
        return [Step("systemd is not running here: start sysmenu yourself (see the unit's ExecStart)")]
    return [Step(f"systemctl {' '.join(c)}", _run("systemctl", *c)) for c in commands]


def uninstall_plan(options: Options, purge: bool = False) -> list[Step]:
    """Every step of `sysmenu service uninstall`: the service and the rules go; the config,
    the state (users, keys, runs) and the user stay unless `purge`."""
    steps: list[Step | None] = []
    if options.at(UNIT_PATH).exists():
        steps += _systemd_steps(options, ["disable", "--now", "sysmenu"])
    for path in (UNIT_PATH, DROPIN_PATH, SUDOERS_PATH, POLKIT_PATH):
        steps.append(_remove(options.at(path)))
    dropins = options.at(DROPIN_PATH).parent
    if dropins.is_dir():
        steps.append(Step(f"remove {dropins} if empty", lambda: _rmdir_if_empty(dropins)))
    link = options.at(LINK_PATH)
    venv = options.at(options.venv or DEFAULT_VENV)
    if link.is_symlink():
        steps.append(_remove(link))
    if (venv / _MARKER).exists():
        steps.append(Step(f"remove {venv}", lambda: shutil.rmtree(venv)))
    if purge:
        for gone in (options.at(unit.DEFAULT_CONFIG).parent, options.at(unit.DEFAULT_DATA_DIR)):
            if gone.exists():
                steps.append(Step(f"remove {gone}", _rmtree(gone)))
        if options.real_root and _user_exists(options.user):
            steps.append(Step(f"remove user {options.user}", _run("userdel", options.user)))
    else:
        steps.append(
            Step(
                f"keep {options.at('/etc/sysmenu')} and {options.at(unit.DEFAULT_DATA_DIR)}"
                " (--purge removes them)"
            )
        )
    steps += _systemd_steps(options, ["daemon-reload"]) if options.real_root else []
    return [s for s in steps if s is not None]


def _rmtree(path: Path) -> Callable[[], None]:
    return lambda: shutil.rmtree(path)


def _rmdir_if_empty(path: Path) -> None:
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def execute(steps: list[Step], dry_run: bool, echo: Callable[[str], None]) -> None:
    """Print each step and (unless `dry_run`) do it; a failing step stops the rest."""
    for step in steps:
        if step.action is None:
            echo(f"  {step.text}")
            continue
        echo(("would " if dry_run else "") + step.text)
        if dry_run and step.content:
            echo("".join(f"    | {line}\n" for line in step.content.splitlines()).rstrip("\n"))
        if not dry_run:
            step.action()
