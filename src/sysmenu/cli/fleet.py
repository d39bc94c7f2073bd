"""CLI commands about the fleet on the broker: ``fleet hosts`` and ``fleet run``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from .context import Context, pass_ctx
from .table import echo_table

if TYPE_CHECKING:
    import aiomqtt

    from ..mqtt_settings import MqttSettings

_T = TypeVar("_T")


def _settings(ctx: Context) -> MqttSettings:
    settings = ctx.config.sysmenu.mqtt
    if settings is None:
        raise click.ClickException("no broker configured: add a sysmenu.mqtt section (see the README)")
    return settings


def _on_broker(
    settings: MqttSettings, work: Callable[[aiomqtt.Client], Awaitable[_T]], needs_v5: str | None = None
) -> _T:
    """Connect, do `work` with the client, disconnect; broker trouble is a clean CLI error.

    MQTT v5 first; a broker that speaks only 3.1.1 is used as such, unless the work
    `needs_v5` (then that names it in the error)."""
    import aiomqtt

    from .. import fleet
    from ..mqtt_topics import refuses_v5

    where = f"{settings.host}:{settings.port}"

    async def attempt(protocol: aiomqtt.ProtocolVersion) -> _T:
        async with fleet.client(settings, protocol) as mqtt:
            return await work(mqtt)

    async def main() -> _T:
        try:
            try:
                return await attempt(aiomqtt.ProtocolVersion.V5)
            except aiomqtt.MqttError as exc:
                if not refuses_v5(exc):
                    raise
            if needs_v5:
                raise click.ClickException(
                    f"{needs_v5} needs an MQTT v5 broker (Mosquitto 1.6 or later, EMQX...):"
                    f" {where} speaks only MQTT 3.1.1"
                )
            return await attempt(aiomqtt.ProtocolVersion.V311)
        except (aiomqtt.MqttError, OSError) as exc:
            raise click.ClickException(f"MQTT broker {where}: {exc}") from None

    return asyncio.run(main())


def _tail(text: str, width: int = 40) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return last if len(last) <= width else "…" + last[-(width - 1) :]


@click.group("fleet")
def fleet_group() -> None:
    """Hosts on the MQTT broker (needs sysmenu.mqtt)."""


@fleet_group.command("hosts")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def fleet_hosts(ctx: Context, as_json: bool) -> None:
    """List the hosts on the broker: name, online, version, commands."""
    from .. import fleet

    settings = _settings(ctx)
    sender = fleet.sender_of(settings)
    hosts = _on_broker(settings, lambda mqtt: fleet.find_hosts(mqtt, settings.root, sender))
    chosen = fleet.select(hosts, None)
    if as_json:
        click.echo(json.dumps([h.__dict__ for h in chosen], indent=2))
        return
    if not chosen:
        click.echo(f"no hosts under {settings.root}/")
        return
    rows = []
    for h in chosen:
        commands = ", ".join(f"{c.get('source')}:{c.get('action')}" for c in h.commands) or "-"
        rows.append([h.name, "yes" if h.online else "no", h.version or "-", commands])
    echo_table(["HOST", "ONLINE", "VERSION", "COMMANDS"], rows)


@fleet_group.command("run")
@click.argument("source")
@click.argument("action")
@click.option("--hosts", "pattern", metavar="GLOB", help="Hosts whose name matches, e.g. 'pi-*'.")
@click.option("--all", "every", is_flag=True, help="Every host on the broker.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for answers.",
)
@click.option(
    "--arg",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value for one of the command's arguments (repeat for more), checked by each host.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def fleet_run(
    ctx: Context,
    source: str,
    action: str,
    pattern: str | None,
    every: bool,
    timeout: float,
    pairs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run SOURCE ACTION on many hosts through the broker and show each result."""
    from .. import fleet

    if every == (pattern is not None):
        raise click.UsageError("give either --hosts GLOB or --all")
    settings = _settings(ctx)
    sender = fleet.sender_of(settings)

    def progress(outcome: fleet.Outcome) -> None:
        if not as_json:
            click.echo(f"{outcome.host}: {outcome.state}", err=True)

    async def work(mqtt: aiomqtt.Client) -> list[fleet.Outcome]:
        hosts = fleet.select(await fleet.find_hosts(mqtt, settings.root, sender), pattern)
        if not hosts:
            return []
        if not as_json:
            click.echo(f"running {source}:{action} on {len(hosts)} host(s)...", err=True)
        return await fleet.run_on(
            mqtt, settings.root, sender, hosts, source, action, timeout, progress, pairs
        )

    outcomes = _on_broker(settings, work, needs_v5="`sysmenu fleet run`")
    if not outcomes:
        missing = f"no host matches {pattern!r}" if pattern else "no hosts on the broker"
        raise click.ClickException(missing)
    if as_json:
        click.echo(json.dumps([o.as_dict() for o in outcomes], indent=2))
    else:
        rows = []
        for o in outcomes:
            exit_code = "-" if o.returncode is None else str(o.returncode)
            duration = "-" if o.duration is None else f"{o.duration:.2f}s"
            rows.append([o.host, o.state, exit_code, duration, o.error or _tail(o.output)])
        echo_table(["HOST", "STATE", "EXIT", "DURATION", "OUTPUT"], rows)
    if any(o.state != "ok" for o in outcomes):
        raise SystemExit(1)
