"""CLI commands about the audit log: ``audit`` (read, filtered) and ``audit verify``."""

from __future__ import annotations

import json
import sys
import time

import click

from .context import Context, pass_ctx
from .runs import WHEN_HELP, parse_when


def _detail(detail: object) -> str:
    if not isinstance(detail, dict):
        return str(detail)
    return " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in detail.items())


@click.group("audit", invoke_without_command=True)
@click.option(
    "--since", metavar="TIME", callback=parse_when, help=f"Only entries at or after this time: {WHEN_HELP}."
)
@click.option(
    "--until", metavar="TIME", callback=parse_when, help="Only entries before this time (same forms)."
)
@click.option("--user", help="Only entries of this user.")
@click.option("--event", help="Only these events, comma-separated (login, login_failed, execute, kill, ...).")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 100000), help="How many at most."
)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as a JSON list.")
@click.pass_context
def audit(
    cctx: click.Context,
    since: float | None,
    until: float | None,
    user: str | None,
    event: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Read the audit log, newest first (or: audit verify)."""
    if cctx.invoked_subcommand is not None:
        return
    ctx: Context = cctx.obj
    events = [e.strip() for e in (event or "").split(",") if e.strip()]
    entries = ctx.store.audit.query(since=since, until=until, user=user, events=events, limit=limit)
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False, indent=2))
        return
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["ts"]))
        by = f"{e['user'] or '-'} ({e['auth'] or '-'}, {e['client'] or '-'})"
        click.echo(f"{e['id']:6}  {when}  {e['event']:16} {by:36} {_detail(e['detail'])}")


@audit.command("verify")
@pass_ctx
def audit_verify(ctx: Context) -> None:
    """Check the hash chain: each row must follow the one before it; name the first that does not."""
    verdict = ctx.store.audit.verify()
    if verdict.broken is None:
        span = f" (rows {verdict.first} to {verdict.last})" if verdict.rows else ""
        click.echo(f"audit log intact: {verdict.rows} rows{span}")
        return
    click.echo(f"audit log broken at row {verdict.broken.row}: it {verdict.broken.reason}", err=True)
    click.echo(f"({verdict.rows - 1} rows before it fit)", err=True)
    sys.exit(1)
