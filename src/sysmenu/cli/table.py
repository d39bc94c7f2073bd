"""The CLI's one way to print a table: a header and aligned columns, two spaces apart;
the last column is not padded (it may be long: commands, fixes, scopes)."""

from __future__ import annotations

from collections.abc import Sequence

import click


def table_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """`rows` (the header first) as aligned lines."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


def echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` under `header`; nothing at all when there are no rows."""
    if rows:
        for line in table_lines([header, *rows]):
            click.echo(line)
