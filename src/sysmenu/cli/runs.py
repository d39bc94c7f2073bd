"""CLI commands about runs: ``run``, ``runs``, ``runs show``, ``runs follow``."""

from __future__ import annotations

import getpass
import json
import sys
import time
from typing import TYPE_CHECKING

import click

from ..models import RUN_STATES
from .context import Context, pass_ctx

if TYPE_CHECKING:
    from ..models import RunRecord

_FOLLOW_POLL = 0.5


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _plain(html: str) -> str:
    """A confirm text (HTML in OctoPrint's configs) as a terminal shows it."""
    import html as html_module
    import re

    text = re.sub(r"<br\s*/?>|</p>|</li>", "\n", html, flags=re.IGNORECASE)
    return html_module.unescape(re.sub(r"<[^>]*>", "", text)).strip()


def _end(run: RunRecord) -> str:
    if run.signal is not None:
        return f"signal {run.signal}"
    return "-" if run.returncode is None else f"rc {run.returncode}"


def _print_run(run: RunRecord) -> None:
    duration = "-" if run.duration is None else f"{run.duration:.3f}s"
    click.echo(f"run {run.id}: {run.source}:{run.action} ({run.name})")
    click.echo(f"  state {run.state}, {_end(run)}, duration {duration}")
    click.echo(f"  by {run.user or '-'} via {run.auth or '-'} from {run.client or '-'}")
    click.echo(f"  started {_when(run.started)}, ended {_when(run.ended)}")
    if run.arguments:
        shown = ", ".join(
            f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in run.arguments.items()
        )
        click.echo(f"  arguments {shown}")
    for stream, text, dropped in (
        ("stdout", run.stdout, run.stdout_dropped),
        ("stderr", run.stderr, run.stderr_dropped),
    ):
        if text:
            click.echo(f"--- {stream}" + (f" ({dropped} bytes dropped)" if dropped else ""))
            click.echo(text, nl=not text.endswith("\n"))


def _follow_http(url: str, key: str, run_id: int) -> int:
    """Print a run's output as the server streams it; return its exit status for the shell."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/runs/{run_id}/events",
        headers={"X-Api-Key": key, "Accept": "text/event-stream"},
    )
    try:
        response = urllib.request.urlopen(request)
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code}: {exc.read().decode(errors='replace')}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc.reason}") from None
    event, state = "", "failed"
    with response:
        for raw in response:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "output":
                    out = sys.stderr if data["stream"] == "stderr" else sys.stdout
                    out.write(data["text"])
                    out.flush()
                elif event == "end":
                    state = data["state"]
                    click.echo(f"[run {run_id} ended: {state}]", err=True)
    return 0 if state == "ok" else 1


@click.command("run")
@click.argument("source")
@click.argument("action")
@click.option("-y", "--yes", is_flag=True, help="Do not ask, even when the command has a confirm text.")
@click.option(
    "--arg",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value for one of the command's arguments (repeat for more; see `sysmenu list`).",
)
@pass_ctx
def run_command(ctx: Context, source: str, action: str, yes: bool, pairs: tuple[str, ...]) -> None:
    """Run SOURCE ACTION here, through the same runner, and record it.

    A command with a confirm text (such as core shutdown) asks first, as the page does."""
    import asyncio

    from ..arguments import values_from_text
    from ..catalogue import Catalogue
    from ..invocation import Invocation
    from ..models import Who
    from ..runner import Runner

    spec = Catalogue(ctx.config).get(source, action)
    if spec is None:
        raise click.ClickException(f"no command {source}:{action}")
    if pairs and not spec.arguments:
        raise click.ClickException(f"{source}:{action} takes no arguments")
    invocation = Invocation.of(spec, values_from_text(spec.arguments, pairs))  # checked before asking
    if spec.confirm and not yes and not spec.is_divider:
        click.echo(_plain(spec.confirm), err=True)
        click.confirm(f"Run {source}:{action} ({spec.name})?", abort=True, err=True)
    settings = ctx.config.sysmenu

    async def go() -> RunRecord:
        runner = Runner.from_settings(ctx.store.runs, settings)
        who = Who(getpass.getuser(), "cli", "local")
        run = await runner.start(spec, who, invocation=invocation)
        shown = {"arguments": invocation.shown} if invocation.shown is not None else {}
        ctx.store.audit.record("execute", who, source=source, action=action, run=run.id, **shown)
        history, queue = run.subscribe()
        for stream, text in history:
            (sys.stderr if stream == "stderr" else sys.stdout).write(text)
        while queue is not None:
            item = await queue.get()
            if item is None:
                break
            (sys.stderr if item[0] == "stderr" else sys.stdout).write(item[1])
        await run.done.wait()
        return run.record(output=False)

    result = asyncio.run(go())
    click.echo(f"[run {result.id} ended: {result.state}, {_end(result)}]", err=True)
    sys.exit(0 if result.state == "ok" or (spec.ignore and result.state == "failed") else 1)


def parse_when(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """An option's point in time as `timefilter` reads it (ISO 8601, today, yesterday, 2h...)."""
    from ..timefilter import parse_time

    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


WHEN_HELP = "ISO 8601 (2026-11-24, 2026-11-24T18:30), today, yesterday, or an age like 2h, 7d"


@click.group("runs", invoke_without_command=True)
@click.option("--source", help="Only runs of this source: core, custom or plugin.")
@click.option("--action", help="Only runs of this action (the command's name in the URL).")
@click.option(
    "--state", type=click.Choice(RUN_STATES), help="Only runs in this state (ok includes ignored failures)."
)
@click.option(
    "--since",
    metavar="TIME",
    callback=parse_when,
    help=f"Only runs started at or after this time: {WHEN_HELP}.",
)
@click.option(
    "--until",
    metavar="TIME",
    callback=parse_when,
    help="Only runs started before this time (same forms as --since).",
)
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many runs at most."
)
@click.pass_context
def runs(
    cctx: click.Context,
    source: str | None,
    action: str | None,
    state: str | None,
    since: float | None,
    until: float | None,
    limit: int,
) -> None:
    """List runs, newest first (or: runs show ID, runs follow ID).

    "What ran yesterday?" is: sysmenu runs --since yesterday --until today
    """
    if cctx.invoked_subcommand is not None:
        return
    ctx = cctx.obj
    assert ctx is not None
    rows = ctx.store.runs.list(
        source=source, action=action, state=state, since=since, until=until, limit=limit
    )
    for r in rows:
        duration = "-" if r.duration is None else f"{r.duration:.2f}s"
        click.echo(
            f"{r.id:6}  {_when(r.started)}  {r.state:11} {_end(r):10} "
            f"{duration:>9}  {r.source}:{r.action}  {r.user or '-'}"
        )


@runs.command("show")
@click.argument("run_id", type=int)
@pass_ctx
def runs_show(ctx: Context, run_id: int) -> None:
    """Show run ID with its output."""
    run = ctx.store.runs.get(run_id)
    if run is None:
        raise click.ClickException(f"no run {run_id}")
    _print_run(run)


@runs.command("follow")
@click.argument("run_id", type=int)
@click.option("--url", help="The server (default: from the config's host and port).")
@click.option(
    "--api-key",
    envvar="SYSMENU_API_KEY",
    help="Follow live output through the server with this key ($SYSMENU_API_KEY).",
)
@pass_ctx
def runs_follow(ctx: Context, run_id: int, url: str | None, api_key: str | None) -> None:
    """Follow run ID until it ends (live output with an API key; else its stored result)."""
    if api_key:
        from ..hosts import local_url

        settings = ctx.config.sysmenu
        sys.exit(_follow_http(url or local_url(settings.host, settings.port), api_key, run_id))
    run = ctx.store.runs.get(run_id)
    if run is None:
        raise click.ClickException(f"no run {run_id}")
    if run.state == "running":
        click.echo(
            f"run {run_id} is running; waiting for it to end (give --api-key to see its output live)",
            err=True,
        )
    while run is not None and run.state == "running":
        time.sleep(_FOLLOW_POLL)
        run = ctx.store.runs.get(run_id)
    assert run is not None
    _print_run(run)
    sys.exit(0 if run.state == "ok" else 1)
