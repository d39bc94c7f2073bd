"""CLI commands about groups: ``group list``, ``group add``, ``group remove``. Changes are audited."""

from __future__ import annotations

import click

from ..access import BUILTIN_GROUPS, PERMISSIONS
from .context import Context, pass_ctx
from .table import echo_table


@click.group(help=f"Manage groups (built-in: {', '.join(BUILTIN_GROUPS)}; more in sysmenu.groups or here).")
def group() -> None:
    pass


@group.command("list")
@pass_ctx
def group_list(ctx: Context) -> None:
    """List groups: where each is defined, its permissions, its members."""
    configured = ctx.config.sysmenu.groups
    stored = ctx.store.accounts.list_groups()
    members = ctx.store.accounts.group_members()
    rows = []
    for name in sorted({*BUILTIN_GROUPS, *configured, *stored}):
        if name in BUILTIN_GROUPS:
            where, perms = "built-in", sorted(BUILTIN_GROUPS[name])
        elif name in configured:
            where, perms = "config", sorted({*configured[name], *stored.get(name, ())})
        else:
            where, perms = "cli", sorted(stored[name])
        rows.append((name, where, ",".join(perms) or "-", ",".join(members.get(name, [])) or "-"))
    echo_table(("GROUP", "DEFINED", "PERMISSIONS", "MEMBERS"), rows)


@group.command("add")
@click.argument("name")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(PERMISSIONS),
    help="A permission the group gives (repeatable); none: only what allow rules name it for.",
)
@pass_ctx
def group_add(ctx: Context, name: str, permissions: tuple[str, ...]) -> None:
    """Add group NAME."""
    if name in ctx.config.sysmenu.groups:
        raise click.ClickException(f"group {name!r} is defined in the config (sysmenu.groups)")
    ctx.store.accounts.add_group(name, permissions)
    ctx.store.audit.record("group-added", ctx.who, name=name, permissions=list(permissions))
    click.echo(f"added group {name} ({', '.join(permissions) or 'no permission'})")


@group.command("remove")
@click.argument("name")
@pass_ctx
def group_remove(ctx: Context, name: str) -> None:
    """Remove group NAME (nobody may be in it)."""
    ctx.store.accounts.remove_group(name)
    ctx.store.audit.record("group-removed", ctx.who, name=name)
    click.echo(f"removed group {name}")
