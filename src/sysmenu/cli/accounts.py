"""CLI commands about users and API keys: ``user ...``, ``key ...``."""

from __future__ import annotations

import time

import click

from ..models import GROUPS
from .context import Context, pass_ctx


@click.group()
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
    type=click.Choice(list(GROUPS)),
    help="Group(s): admins have SYSTEM.",
)
@click.option("--password", help="Password (prompted for when not given; '-' for none).")
@pass_ctx
def user_add(ctx: Context, name: str, groups: tuple[str, ...], password: str | None) -> None:
    """Add user NAME."""
    from ..passwords import hash_password

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    hashed = None if password == "-" else hash_password(password)
    added = ctx.store.accounts.add_user(name, list(groups), hashed)
    click.echo(f"added user {added.name} ({', '.join(added.groups)})")


@user.command("passwd")
@click.argument("name")
@click.option("--password", help="New password (prompted for when not given).")
@pass_ctx
def user_passwd(ctx: Context, name: str, password: str | None) -> None:
    """Set the password of user NAME."""
    from ..passwords import hash_password

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    ctx.store.accounts.set_password(name, hash_password(password))
    click.echo(f"password of {name} set")


@user.command("list")
@pass_ctx
def user_list(ctx: Context) -> None:
    """List users, their groups and permissions."""
    for u in ctx.store.accounts.list_users():
        perms = ",".join(sorted(u.permissions)) or "-"
        click.echo(f"{u.name:20} groups={','.join(u.groups) or '-'}  permissions={perms}")


@user.command("remove")
@click.argument("name")
@pass_ctx
def user_remove(ctx: Context, name: str) -> None:
    """Remove user NAME and their keys."""
    ctx.store.accounts.remove_user(name)
    click.echo(f"removed user {name}")


@click.group()
def key() -> None:
    """Manage API keys."""


@key.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
@pass_ctx
def key_create(ctx: Context, user_name: str, name: str) -> None:
    """Create an API key for USER and print it (it is shown only once)."""
    click.echo(ctx.store.accounts.create_key(user_name, name))


@key.command("list")
@click.argument("user_name", metavar="[USER]", required=False)
@pass_ctx
def key_list(ctx: Context, user_name: str | None) -> None:
    """List API keys (their prefixes; keys themselves are not stored)."""
    for k in ctx.store.accounts.list_keys(user_name):
        state = "revoked" if k.revoked else "active"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created))
        click.echo(f"{k.id:4}  {k.prefix}…  {k.user:16} {k.name:16} {created}  {state}")


@key.command("revoke")
@click.argument("ident", metavar="ID|PREFIX")
@pass_ctx
def key_revoke(ctx: Context, ident: str) -> None:
    """Revoke a key by its id or its prefix."""
    count = ctx.store.accounts.revoke_key(ident)
    click.echo(f"revoked {count} key(s)")
