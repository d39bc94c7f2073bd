"""The ``sysmenu`` group and the commands about the server: serve, check-config, list."""

from __future__ import annotations

import socket

import click

from .. import __version__
from ..settings import default_of
from .context import CONFIG_ENV, Context, Group, pass_ctx
from .table import table_lines


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sysmenu")
@click.option(
    "-c",
    "--config",
    "config_path",
    envvar=CONFIG_ENV,
    type=click.Path(dir_okay=False),
    help=f"config.yaml (OctoPrint format). Default: ${CONFIG_ENV}, else the built-in demo.",
)
@click.option(
    "--data-dir",
    envvar="SYSMENU_DATA_DIR",
    type=click.Path(file_okay=False),
    help="Where state lives (overrides sysmenu.data_dir).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
    """sysmenu: the System menu for a headless machine."""
    ctx.obj = Context(config_path, data_dir)


@main.command()
@click.option("--host", help=f"Address to listen on (default: sysmenu.host, {default_of('host')}).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help=f"Port to listen on (default: sysmenu.port, {default_of('port')}).",
)
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0),
    envvar="SYSMENU_IDLE_EXIT",
    help="Under socket activation: exit after this many idle seconds (default: sysmenu.idle_exit).",
)
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None, idle_exit: float | None) -> None:
    """Run the server (on the sockets systemd passes, when socket-activated)."""
    import logging
    import sys

    # uvicorn imports its file-watching reloader (watchfiles) for --reload, which
    # sysmenu never uses: 7 MB of resident memory for nothing. A None entry makes that
    # import fail, and uvicorn falls back to its plain reloader, unused as well.
    sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]
    from .. import logs, systemd
    from ..app import create_app
    from ..config import check_access
    from ..hosts import open_to_rebinding
    from ..server import run_server
    from .first_start import first_start

    config = ctx.config
    settings = config.sysmenu
    logs.configure(settings.log_level, settings.log_format, settings.access_log)
    log = logging.getLogger("sysmenu")
    notifier = systemd.Notifier()  # reads and clears NOTIFY_SOCKET before anything runs
    try:
        sockets = systemd.listen_sockets()
    except systemd.ActivationError as exc:
        raise click.ClickException(str(exc)) from None
    idle = settings.idle_exit if idle_exit is None else idle_exit
    if idle and not sockets:
        log.warning("idle exit is off: it needs socket activation (nothing would start sysmenu again)")
    host = host or settings.host
    port = port or settings.port
    if not sockets:  # before anything is created or announced; systemd's sockets are in use by design
        from ..doctor import listen_problem

        problem = listen_problem(host, port)
        if problem is not None:
            raise click.ClickException(problem)
    store = ctx.store
    if store.accounts.count_users() == 0:
        first_start(store, config.data_dir(), ctx.who)
    check_access(config, [u.name for u in store.accounts.list_users()], list(store.accounts.list_groups()))
    app = create_app(config, store)
    # Where sysmenu listens decides the Host check (DNS rebinding): the sockets systemd
    # passed (a Unix socket counts as local), else the address it binds itself.
    listen = [
        str(s.getsockname()[0]) if s.family in (socket.AF_INET, socket.AF_INET6) else "localhost"
        for s in sockets
    ] or [host]
    app.state.sysmenu.listen_on(listen)
    warning = open_to_rebinding(app.state.sysmenu.hosts, listen)
    if warning:
        log.warning(warning)
    log.info("sysmenu %s: config %s, data in %s", __version__, config.source, config.data_dir())
    if sockets:
        where = ", ".join(systemd.describe(s) for s in sockets)
        log.info("serving on the socket(s) systemd passed: %s", where)
    else:
        shown = f"[{host}]" if ":" in host else host
        click.echo(
            f"Open http://{shown}:{port}/ and log in (API at http://{shown}:{port}/api/system/commands)"
        )
    run_server(app, host, port, settings, sockets, idle or 0.0, notifier)


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def check_config(ctx: Context, file: str) -> None:
    """Validate FILE without starting anything (its allow/deny names too, against the
    users and groups of the database when there is one)."""
    from pathlib import Path

    from ..catalogue import Catalogue
    from ..config import check_access, load
    from ..store import DATABASE_FILE, Store

    config = load(file)
    catalogue = Catalogue(config)
    database = (Path(ctx.data_dir) if ctx.data_dir else config.data_dir()) / DATABASE_FILE
    if database.is_file():
        store = Store(database)
        try:
            users = [u.name for u in store.accounts.list_users()]
            check_access(config, users, list(store.accounts.list_groups()))
        finally:
            store.close()
    elif config.access_rules():
        click.echo(f"(no database at {database}: names in allow/deny not checked against users)")
    counts = ", ".join(f"{len(specs)} {source}" for source, specs in catalogue.specs.items())
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{file}: OK ({counts})" + (f", {len(config.warnings)} warning(s)" if config.warnings else ""))


@main.command("list")
@pass_ctx
def list_commands(ctx: Context) -> None:
    """List the configured commands with their timeout, concurrency and flags."""
    from ..arguments import describe
    from ..catalogue import Catalogue

    default_timeout = ctx.config.sysmenu.default_timeout
    rows = [("SOURCE", "ACTION", "NAME", "TIMEOUT", "CONCURRENCY", "FLAGS")]  # the header first
    arguments: dict[int, list[str]] = {}  # row -> its command's arguments, shown below it
    for source, specs in Catalogue(ctx.config).specs.items():
        for spec in specs:
            if spec.is_divider:
                rows.append((source, "----", "", "", "", ""))
                continue
            flags = [
                flag
                for flag, on in (
                    ("async", spec.is_async),
                    ("ignore", spec.ignore),
                    ("confirm", bool(spec.confirm)),
                    ("fresh_credentials", spec.fresh_credentials),
                )
                if on
            ]
            timeout = f"{spec.timeout:g}s" if spec.timeout else f"{default_timeout:g}s (default)"
            concurrency = f"{spec.concurrency}{', queued' if spec.queue else ''}"
            rows.append((source, spec.action, spec.name, timeout, concurrency, ", ".join(flags) or "-"))
            arguments[len(rows) - 1] = [f"--arg {describe(argument)}" for argument in spec.arguments]
    indent = " " * (max(len(row[0]) for row in rows) + 2)  # under the ACTION column
    for index, line in enumerate(table_lines(rows)):
        click.echo(line)
        for text in arguments.get(index, ()):
            click.echo(indent + text)
