"""``sysmenu settings``: every setting of the ``sysmenu:`` section, its value in force,
its default and what it does, from the settings' one declaration."""

from __future__ import annotations

import click

from .context import Context, pass_ctx


@click.command("settings")
@pass_ctx
def settings(ctx: Context) -> None:
    """List sysmenu's settings: the value in force, the default and what each one does."""
    from ..settings import DECLARATIONS, plain, shown

    config = ctx.config
    for declaration in DECLARATIONS:
        value = getattr(config.sysmenu, declaration.name)
        in_force = declaration.default if value is None else shown(value)
        click.echo(f"{declaration.key} = {in_force}  (default: {declaration.default})")
        restart = " (read at start-up: a change waits for a restart)" if declaration.restart else ""
        click.echo(f"    {plain(declaration.help)}{restart}")
