"""CLI commands about running sysmenu as a service: ``doctor``, ``service install|uninstall``."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..unit import DEFAULT_CONFIG, DEFAULT_VENV, SERVICE_USER
from .context import Context, pass_ctx
from .table import echo_table

if TYPE_CHECKING:
    from ..doctor import Verdict
    from ..service import Options


def _installed_unit(root: Path = Path("/")) -> tuple[dict[str, str], dict[str, str]]:
    """The installed unit's [Service] settings (drop-ins applied) and its ExecStart options."""
    from ..service import UNIT_PATH
    from ..unit import unit_settings

    path = root / UNIT_PATH.lstrip("/")
    if not path.is_file():
        return {}, {}
    settings = unit_settings(path.read_text())
    dropins = path.with_name(path.name + ".d")
    for conf in sorted(dropins.glob("*.conf")) if dropins.is_dir() else []:
        settings.update(unit_settings(conf.read_text()))
    argv = shlex.split(settings.get("ExecStart", "").lstrip("-@:+!"))
    found: dict[str, str] = {"program": argv[0]} if argv else {}
    for option in ("--config", "--data-dir"):
        if option in argv[:-1]:
            found[option] = argv[argv.index(option) + 1]
    return settings, found


def _table(rows: list[Verdict]) -> None:
    shown = []
    for v in rows:
        ok = {True: "yes", False: "NO", None: "?"}[v.runnable]
        shown.append((v.subject, ok, v.why or "-", v.fix or "-"))
    echo_table(("CHECK", "OK", "WHY NOT", "HOW TO FIX"), shown)


def _doctor(ctx: Context, user: str | None, root: Path) -> None:
    from ..catalogue import Catalogue
    from ..config import load, replace
    from ..doctor import (
        Account,
        Prober,
        Verdict,
        broker_verdict,
        command_verdicts,
        data_dir_verdict,
        port_verdict,
        program_verdict,
    )
    from ..errors import ConfigError

    unit, exec_options = _installed_unit(root)
    under_root = {k: str(root / v.lstrip("/")) for k, v in exec_options.items() if k != "program"}
    config_path = ctx.config_path or under_root.get("--config")
    data_dir = ctx.data_dir or under_root.get("--data-dir")
    name = user or unit.get("User")
    try:
        account = Account.named(name) if name else Account.current()
    except KeyError:
        raise click.ClickException(f"no user {name!r} on this machine") from None
    service = bool(unit) and account.name == unit.get("User", "root")
    no_new_privs = unit.get("NoNewPrivileges") == "yes" if service else False
    try:
        prober = Prober(account, no_new_privs)
    except PermissionError as exc:
        raise click.ClickException(f"{exc}: run `sudo sysmenu doctor`") from None
    click.echo(f"checking as user {account.name}" + (" (the service's User=)" if service else ""))
    try:
        config = load(config_path)
    except ConfigError:
        _table([Verdict(f"config {config_path}", False, "invalid (see below)", "fix the config")])
        raise  # printed by the CLI's error mapper (context.cli_error)
    if data_dir:
        config = replace(config, sysmenu=replace(config.sysmenu, data_dir=Path(data_dir)))
    state_dir = root / "var/lib" / unit.get("StateDirectory", "-")
    made_by_systemd = service and config.data_dir() == state_dir
    rows = [
        Verdict(f"config {config.source}", True),
        data_dir_verdict(config.data_dir(), prober, made_by_systemd),
        port_verdict(config.sysmenu.host, config.sysmenu.port, account),
    ]
    if config.sysmenu.mqtt is not None:
        rows.append(broker_verdict(config.sysmenu.mqtt))
    if service and exec_options.get("program"):
        program = exec_options["program"]
        under = root / program.lstrip("/")  # --root: the venv install made is there
        protect_home = unit.get("ProtectHome", "no") not in ("no", "false", "0", "")
        rows.insert(1, program_verdict(str(under if under.exists() else program), prober, protect_home))
    specs = [s for specs in Catalogue(config).specs.values() for s in specs]
    rows += command_verdicts(specs, prober)
    _table(rows)
    failed = [v.subject for v in rows if v.runnable is False]
    if failed:
        click.echo(f"{len(failed)} cannot work: {', '.join(failed)}", err=True)
        sys.exit(1)


def _service_options(
    root: str | None, config: str | None, venv: str | None, use_running: bool, user: str | None = None
) -> Options:
    from ..service import Options

    return Options(
        root=Path(root or "/"),
        config=Path(config) if config else None,
        venv=None if use_running else (venv or DEFAULT_VENV),
        user=user or SERVICE_USER,
    )


def _check_root(root: str | None, dry_run: bool) -> None:
    if not root and not dry_run and os.geteuid() != 0:
        raise click.ClickException("run it as root (sudo), or see what it would do with --dry-run")


@click.command("doctor")
@click.option("--user", help="Check as this user (default: the installed unit's User=, else you).")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    help="Check the service installed under DIR (--root of install).",
)
@pass_ctx
def doctor(ctx: Context, user: str | None, root: str | None) -> None:
    """Check that every configured command can run, as the service's user.

    With a service installed (`sysmenu service install`), its config, data directory and
    user are the ones checked. Prints a table (check, OK, why not, how to fix) and exits 1
    if something cannot work."""
    _doctor(ctx, user, Path(root or "/"))


@click.group("service")
def service() -> None:
    """Install or remove sysmenu as a systemd service."""


root_option = click.option(
    "--root", type=click.Path(file_okay=False), help="Install under DIR instead of / (images, tests)."
)
dry_option = click.option("--dry-run", is_flag=True, help="Print every step (and file) without doing it.")


@service.command("install")
@root_option
@dry_option
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True),
    help=f"Config to install as {DEFAULT_CONFIG} (default: keep the installed one, else the demo).",
)
@click.option("--venv", help=f"Install sysmenu into this venv (default {DEFAULT_VENV}).")
@click.option(
    "--use-running",
    is_flag=True,
    help="Run the sysmenu you are running now instead of a venv of its own.",
)
@click.option("--user", help=f"The service's user (default: {SERVICE_USER}; created when missing).")
def install(
    root: str | None,
    dry_run: bool,
    config_file: str | None,
    venv: str | None,
    use_running: bool,
    user: str | None,
) -> None:
    """Install the service: user, sysmenu, config, unit, sudoers and polkit rules for exactly
    the configured commands. Run it again after changing the commands."""
    from ..service import ServiceError, execute, install_plan

    _check_root(root, dry_run)
    options = _service_options(root, config_file, venv, use_running, user)
    try:
        execute(install_plan(options), dry_run, click.echo)
    except (ServiceError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if not dry_run:
        click.echo("installed; check it with: sudo sysmenu doctor")


@service.command("uninstall")
@root_option
@dry_option
@click.option("--purge", is_flag=True, help="Also remove /etc/sysmenu, /var/lib/sysmenu and the user.")
def uninstall(root: str | None, dry_run: bool, purge: bool) -> None:
    """Stop and remove the service, its unit and its rules (config and state stay unless --purge)."""
    from ..service import ServiceError, execute, uninstall_plan

    _check_root(root, dry_run)
    options = _service_options(root, None, None, False)
    try:
        execute(uninstall_plan(options, purge), dry_run, click.echo)
    except (ServiceError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
