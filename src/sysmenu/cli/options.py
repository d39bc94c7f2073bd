"""``--config`` and ``--data-dir`` after a command's name, as well as before it.

``sysmenu --config X serve`` was the only accepted order, and nobody types it: every command
(and group) also takes them after its name, ``sysmenu serve --config X``. The later one wins.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from .context import Context


def _setter(attribute: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def set_value(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is None or ctx.resilient_parsing:
            return
        target = ctx.find_object(Context)  # made by the main group, before this command parses
        if target is not None:
            setattr(target, attribute, value)

    return set_value


def _options() -> list[click.Option]:
    return [
        click.Option(
            ["--config", "config_path"],
            type=click.Path(dir_okay=False),
            expose_value=False,
            callback=_setter("config_path"),
            help="config.yaml (OctoPrint format); also accepted before the command name.",
        ),
        click.Option(
            ["--data-dir"],
            type=click.Path(file_okay=False),
            expose_value=False,
            callback=_setter("data_dir"),
            help="Where state lives (overrides sysmenu.data_dir).",
        ),
    ]


def add_everywhere(group: click.Group, skip: frozenset[str] = frozenset()) -> None:
    """Give every command under `group` the two options (unless it has its own)."""
    for name, command in group.commands.items():
        if name in skip:
            continue
        taken = {opt for p in command.params for opt in getattr(p, "opts", [])}
        command.params.extend(o for o in _options() if not taken & set(o.opts))
        if isinstance(command, click.Group):
            add_everywhere(command)
