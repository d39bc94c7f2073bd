"""sysmenu's own settings (the ``sysmenu:`` section), each declared once: its default,
its checker and its help text. The declaration drives validation, the README's table
(a test compares them), the CLI's help and ``sysmenu settings``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from . import access
from .checks import (
    Check,
    Invalid,
    boolean,
    checked,
    choice,
    environment,
    hosts,
    networks,
    number,
    optional,
    path,
    string,
)
from .mqtt_settings import MqttSettings

DEFAULT_PORT = 5000
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Retention:
    """How long history is kept: the newest `count` entries, none older than `days` (None: no limit)."""

    days: float | None
    count: int | None


def retention(value: Any) -> Retention:
    if not isinstance(value, dict) or not value or set(value) - {"days", "count"}:
        raise Invalid("Input should be a mapping with days and/or count")
    days = optional(number(gt=0))(value.get("days"))
    count = optional(number(integer=True, ge=1))(value.get("count"))
    return Retention(days, count)


def section(value: Any) -> Any:
    """A section whose keys are checked one by one elsewhere (``sysmenu.mqtt``: config's MQTT_KEYS)."""
    return value


def setting(default: _T, check: Check, help: str, *, shown: str | None = None, restart: bool = False) -> _T:
    """A field of `Settings`: its default, the check a configured value passes, its help
    text (Markdown, as the README shows it), where the value does not say it, how the
    default is shown, and whether it is read at start-up only (`restart`: a config reload
    leaves it as it was and reports the change as waiting for a restart)."""
    metadata = {"check": check, "help": help, "shown": shown, "restart": restart}
    if isinstance(default, list | dict):
        items = default.copy()
        return cast(_T, dataclasses.field(default_factory=lambda: items.copy(), metadata=metadata))
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """The ``sysmenu:`` section: sysmenu's own settings."""

    host: str = setting("127.0.0.1", string(1), "address to listen on", restart=True)
    port: int = setting(DEFAULT_PORT, number(integer=True, ge=1, le=65535), "port to listen on", restart=True)
    data_dir: Path | None = setting(
        None, optional(path), "where the SQLite database lives", shown="~/.local/share/sysmenu", restart=True
    )
    default_timeout: float = setting(
        300.0, number(gt=0), "seconds a command may run when it sets no `timeout`"
    )
    kill_grace: float = setting(
        5.0, number(ge=0), "seconds between SIGTERM and SIGKILL when a run is killed or times out"
    )
    output_limit: int = setting(
        1_048_576,
        number(integer=True, ge=1024),
        "bytes of stdout and of stderr kept per run (head and tail; the middle is counted and dropped)",
    )
    trusted_proxies: list[str] = setting(
        ["127.0.0.1", "::1"],
        networks,
        "peers whose `X-Forwarded-*` and `X-Script-Name` headers are believed",
    )
    log_level: str = setting(
        "info", choice(*LOG_LEVELS), "`debug`, `info`, `warning` or `error`", restart=True
    )
    log_format: str = setting(
        "text",
        choice(*LOG_FORMATS),
        "`text`: one line per event, `TIME LEVEL LOGGER: MESSAGE` with an ISO 8601 time; `json`: one "
        "JSON object per line (`time`, `level`, `logger`, `message`, and `exception` when there is one)",
        restart=True,
    )
    access_log: bool = setting(
        False, boolean, "one log line per HTTP request (`?apikey=` values are hidden)", restart=True
    )
    reload_interval: float = setting(
        2.0,
        number(ge=0),
        "seconds between checks of the config file for changes (`0`: never); a change that fails "
        "validation is reported and the last good config stays in force",
        restart=True,
    )
    header_timeout: float = setting(
        10.0,
        number(gt=0),
        "seconds a client may take to send a request's headers and body (slow clients are cut off with 408)",
        restart=True,
    )
    max_header_bytes: int = setting(
        32768, number(integer=True, ge=1024), "largest request line plus headers; more gets 431", restart=True
    )
    max_connections: int = setting(
        256,
        number(integer=True, ge=1),
        "open connections at most; the connections beyond it (only those) get 503",
    )
    max_connections_per_address: int = setting(
        32,
        number(integer=True, ge=0),
        "open connections from one address at most (an IPv6 address counts as its /64); more get 503; "
        "`0`: no such cap",
    )
    connection_cap_exempt: list[str] | None = setting(
        None,
        optional(networks),
        "addresses or networks the per-address cap does not apply to (a reverse proxy carries many "
        "clients); `[]`: none",
        shown="the `trusted_proxies`",
    )
    write_timeout: float = setting(
        30.0,
        number(gt=0),
        "seconds an answer may wait for a client that does not read it before the connection is cut off",
        restart=True,
    )
    key_failure_limit: int = setting(
        10,
        number(integer=True, ge=1),
        "wrong API keys one address may send within the window before it gets 429 for wrong keys (a "
        'valid key is never refused); wrong passwords per address and user name (see "The page"); an '
        "IPv6 address counts as its /64",
    )
    key_failure_window: float = setting(60.0, number(gt=0), "that window, in seconds")
    idle_exit: float = setting(
        0.0,
        number(ge=0),
        "under socket activation only: seconds without a request, an open connection or a running "
        "command after which the server exits cleanly, to be started again by the next connection "
        "(`0`: never; `serve --idle-exit` and `$SYSMENU_IDLE_EXIT` override it)",
        restart=True,
    )
    metrics_open: bool = setting(
        False, boolean, "`GET /metrics` without a key (else it needs a key with the SYSTEM permission)"
    )
    groups: dict[str, tuple[str, ...]] = setting(
        {},
        checked(access.check_groups),
        "more groups: name -> list of permissions (`ADMIN`, `SYSTEM`, `READ`; `[]` for a group that "
        "only `allow` rules name)",
        shown="none",
    )
    core_access: dict[str, access.Rule] = setting(
        {},
        checked(access.check_core_access),
        "`allow`/`deny` for the core commands: `shutdown`, `reboot`, `restart`, `restart_safe` -> "
        "`{allow: [...], deny: [...]}`",
        shown="none",
    )
    keep_runs: Retention = setting(
        Retention(days=90, count=2000),
        retention,
        "run history kept: runs older than `days` and beyond the newest `count` are pruned (either "
        "may be left out)",
        shown="{days: 90, count: 2000}",
    )
    keep_audit: Retention = setting(
        Retention(days=365, count=50000),
        retention,
        "the same for the audit log",
        shown="{days: 365, count: 50000}",
    )
    strict: bool = setting(False, boolean, "make the config's warnings errors (see below)")
    mqtt: MqttSettings | None = setting(
        None,
        section,
        "the MQTT broker to join: see [MQTT](#mqtt-home-assistant-and-a-fleet-of-hosts)",
        shown="none (off)",
        restart=True,
    )
    allowed_hosts: list[str] = setting(
        [],
        hosts,
        "`Host` names (or addresses) sysmenu answers to besides loopback ones: `pi.lan`, `.example.org` "
        '(that domain and below), `*` (any); see "Host names" below',
    )
    environment: dict[str, str] = setting(
        {},
        environment,
        'variables added to every command\'s environment (a mapping); see "Command environment" below',
        shown="none",
    )


def shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True)
class Declaration:
    """One setting as declared: the key, the default as documented, the check, the help."""

    name: str
    default: str
    check: Check
    help: str
    restart: bool = False  # read at start-up only: a reload leaves it, reported as pending_restart

    @property
    def key(self) -> str:
        return f"sysmenu.{self.name}"


def _declarations() -> tuple[Declaration, ...]:
    defaults = Settings()
    declared = []
    for f in dataclasses.fields(Settings):
        default = f.metadata["shown"] or shown(getattr(defaults, f.name))
        metadata = f.metadata
        declared.append(
            Declaration(f.name, default, metadata["check"], metadata["help"], metadata["restart"])
        )
    return tuple(declared)


DECLARATIONS = _declarations()
BY_NAME: dict[str, Declaration] = {d.name: d for d in DECLARATIONS}
RESTART_KEYS = tuple(d.name for d in DECLARATIONS if d.restart)  # settings that take effect at the next start


def default_of(name: str) -> str:
    """How the default of setting `name` is shown (CLI help, README)."""
    return BY_NAME[name].default


def plain(text: str) -> str:
    """Help text for a terminal: without the Markdown backticks."""
    return text.replace("`", "")
