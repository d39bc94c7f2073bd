"""The ``sysmenu`` command: serve, check-config, user, key, list, run, runs."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import click

from . import __version__

if TYPE_CHECKING:
    from .config import Config
    from .store import Store

CONFIG_ENV = "SYSMENU_CONFIG"


class Context:
    def __init__(self, config_path: str | None, data_dir: str | None) -> None:
        self.config_path = config_path
        self.data_dir = data_dir
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from .config import load, replace
            from .errors import ConfigError

            try:
                config = load(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(f"invalid configuration:\n{exc}") from None
            if self.data_dir:
                from pathlib import Path

                settings = replace(config.sysmenu, data_dir=Path(self.data_dir))
                config = replace(config, sysmenu=settings)
            self._config = config
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import Store, StoreError

            try:
                self._store = Store(self.config.data_dir() / "sysmenu.db")
            except StoreError as exc:
                raise click.ClickException(str(exc)) from None
        return self._store


pass_ctx = click.make_pass_decorator(Context)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--host", help="Address to listen on (default: sysmenu.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: sysmenu.port, 5000).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    """Run the server."""
    import logging
    import sys

    # uvicorn imports its file-watching reloader (watchfiles) for --reload, which
    # sysmenu never uses: 7 MB of resident memory for nothing. A None entry makes that
    # import fail, and uvicorn falls back to its plain reloader, unused as well.
    sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]
    from .app import create_app
    from .server import run_server

    config = ctx.config
    settings = config.sysmenu
    host = host or settings.host
    port = port or settings.port
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    store = ctx.store
    if store.count_users() == 0:
        _first_start(store)
    app = create_app(config, store)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"sysmenu {__version__}: config {config.source}, data in {config.data_dir()}")
    click.echo(f"Open http://{shown}:{port}/ and log in (API at http://{shown}:{port}/api/system/commands)")
    run_server(app, host, port, settings)


def _first_start(store: Store) -> None:
    """No users yet: create `admin` with a random password and an API key, and show them once."""
    from .passwords import hash_password

    password = secrets.token_urlsafe(12)
    store.add_user("admin", ["admins"], hash_password(password))
    key = store.create_key("admin", "first start")
    click.echo("First start: created user 'admin' (group admins).")
    click.echo(f"  password: {password}")
    click.echo(f"  API key:  {key}")
    click.echo("Both are shown only now; they are stored hashed.")


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False))
def check_config(file: str) -> None:
    """Validate FILE without starting anything."""
    from .catalogue import Catalogue
    from .config import load
    from .errors import ConfigError

    try:
        config = load(file)
    except ConfigError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from None
    catalogue = Catalogue(config)
    counts = ", ".join(f"{len(specs)} {source}" for source, specs in catalogue.specs.items())
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{file}: OK ({counts})" + (f", {len(config.warnings)} warning(s)" if config.warnings else ""))


@main.command("list")
@pass_ctx
def list_commands(ctx: Context) -> None:
    """List the configured commands."""
    from .catalogue import Catalogue

    for source, specs in Catalogue(ctx.config).specs.items():
        for spec in specs:
            if spec.is_divider:
                click.echo(f"{source:7} ----")
            else:
                flags = [
                    f
                    for f, on in (
                        ("async", spec.is_async),
                        ("ignore", spec.ignore),
                        ("confirm", bool(spec.confirm)),
                    )
                    if on
                ]
                extra = f"  [{', '.join(flags)}]" if flags else ""
                click.echo(f"{source:7} {spec.action:20} {spec.name}{extra}")


# -- users and keys --------------------------------------------------------


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.argument("name")
@click.option(
    "--group",
    "groups",
    multiple=True,
    default=["users"],
    show_default=True,
    type=click.Choice(["admins", "users"]),
    help="Group(s): admins have SYSTEM.",
)
@click.option("--password", help="Password (prompted for when not given; '-' for none).")
@pass_ctx
def user_add(ctx: Context, name: str, groups: tuple[str, ...], password: str | None) -> None:
    """Add user NAME."""
    from .passwords import hash_password
    from .store import StoreError

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    hashed = None if password == "-" else hash_password(password)
    try:
        added = ctx.store.add_user(name, list(groups), hashed)
    except StoreError as exc:
        raise _fail(exc) from None
    click.echo(f"added user {added.name} ({', '.join(added.groups)})")


@user.command("passwd")
@click.argument("name")
@click.option("--password", help="New password (prompted for when not given).")
@pass_ctx
def user_passwd(ctx: Context, name: str, password: str | None) -> None:
    """Set the password of user NAME."""
    from .passwords import hash_password
    from .store import StoreError

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        ctx.store.set_password(name, hash_password(password))
    except StoreError as exc:
        raise _fail(exc) from None
    click.echo(f"password of {name} set")


@user.command("list")
@pass_ctx
def user_list(ctx: Context) -> None:
    """List users, their groups and permissions."""
    for u in ctx.store.list_users():
        perms = ",".join(sorted(u.permissions)) or "-"
        click.echo(f"{u.name:20} groups={','.join(u.groups) or '-'}  permissions={perms}")


@user.command("remove")
@click.argument("name")
@pass_ctx
def user_remove(ctx: Context, name: str) -> None:
    """Remove user NAME and their keys."""
    from .store import StoreError

    try:
        ctx.store.remove_user(name)
    except StoreError as exc:
        raise _fail(exc) from None
    click.echo(f"removed user {name}")


@main.group()
def key() -> None:
    """Manage API keys."""


@key.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@pass_ctx
def key_create(ctx: Context, user_name: str, name: str) -> None:
    """Create an API key for USER and print it (it is shown only once)."""
    from .store import StoreError

    try:
        click.echo(ctx.store.create_key(user_name, name))
    except StoreError as exc:
        raise _fail(exc) from None


@key.command("list")
@click.argument("user_name", metavar="[USER]", required=False)
@pass_ctx
def key_list(ctx: Context, user_name: str | None) -> None:
    """List API keys (their prefixes; keys themselves are not stored)."""
    for k in ctx.store.list_keys(user_name):
        state = "revoked" if k.revoked else "active"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created))
        click.echo(f"{k.id:4}  {k.prefix}…  {k.user:16} {k.name:16} {created}  {state}")


@key.command("revoke")
@click.argument("ident", metavar="ID|PREFIX")
@pass_ctx
def key_revoke(ctx: Context, ident: str) -> None:
    """Revoke a key by its id or its prefix."""
    from .store import StoreError

    try:
        count = ctx.store.revoke_key(ident)
    except StoreError as exc:
        raise _fail(exc) from None
    click.echo(f"revoked {count} key(s)")


from .cli_appkeys import register as register_appkeys  # noqa: E402
from .cli_runs import register  # noqa: E402  (the run commands live in their own module)

register(main, pass_ctx)
register_appkeys(key, pass_ctx)
