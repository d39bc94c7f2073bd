"""The configuration: OctoPrint's ``config.yaml`` format plus a ``sysmenu:`` section.

The file is parsed once into a typed `Config`. Only the sections sysmenu uses
are validated (``server.commands``, ``system.actions``, ``sysmenu``); the rest
of a real OctoPrint file is ignored. A bad value is a `ConfigError` naming the
key path, the line and the value.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

DEFAULT_PORT = 5000


class _Strict(BaseModel):
    """Our own sections: unknown keys are errors (they are typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Lenient(BaseModel):
    """OctoPrint's sections: keys sysmenu does not use are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        # YAML writes an empty section as null (`server:` with nothing under it).
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class ServerCommands(_Lenient):
    systemShutdownCommand: str | None = None
    systemRestartCommand: str | None = None
    serverRestartCommand: str | None = None


class ServerSection(_Lenient):
    commands: ServerCommands = ServerCommands()


class Action(_Strict):
    """One entry of ``system.actions`` (OctoPrint's keys plus sysmenu's)."""

    action: str = Field(min_length=1)
    name: str | None = None
    command: str | None = None
    confirm: str | None = None
    is_async: bool = Field(False, alias="async")
    ignore: bool = False
    debug: bool = False  # OctoPrint's: log the command line; sysmenu records every run anyway
    # sysmenu's own per-command settings
    timeout: float | None = Field(None, gt=0)
    concurrency: int = Field(1, ge=1)
    queue: bool = False
    fresh_credentials: bool = False

    @field_validator("confirm", mode="before")
    @classmethod
    def _confirm_false_is_none(cls, value: Any) -> Any:
        # OctoPrint configs write `confirm: false` to mean "no confirmation".
        if value is False:
            return None
        return value


class SystemSection(_Lenient):
    actions: list[Action] = []


class Settings(_Strict):
    """The ``sysmenu:`` section: sysmenu's own settings."""

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    data_dir: Path | None = None
    default_timeout: float = Field(300.0, gt=0)
    kill_grace: float = Field(5.0, ge=0)
    output_limit: int = Field(1_048_576, ge=1024)
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    reload_interval: float = Field(2.0, ge=0)
    header_timeout: float = Field(10.0, gt=0)
    max_header_bytes: int = Field(32768, ge=1024)
    max_connections: int = Field(256, ge=1)
    key_failure_limit: int = Field(10, ge=1)
    key_failure_window: float = Field(60.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host must not be empty")
        return value


class Config(_Lenient):
    server: ServerSection = ServerSection()
    system: SystemSection = SystemSection()
    sysmenu: Settings = Settings()
    source: str = Field("<built-in>", exclude=True)

    def data_dir(self) -> Path:
        """Where state lives: the configured dir, else the per-user data dir."""
        if self.sysmenu.data_dir is not None:
            return self.sysmenu.data_dir.expanduser()
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "sysmenu"


DEMO_CONFIG = """\
# sysmenu's built-in demo: harmless commands only.
server:
  commands:
    systemShutdownCommand: echo 'demo - this would shut the machine down'
    systemRestartCommand: echo 'demo - this would reboot the machine'
    serverRestartCommand: echo 'demo - this would restart the server'
system:
  actions:
    - action: uptime
      name: Show uptime
      command: uptime
    - action: disk
      name: Disk usage
      command: df -h
    - action: divider
    - action: count
      name: Count to five (slowly)
      command: 'for i in 1 2 3 4 5; do echo "$i"; sleep 1; done'
      async: true
    - action: fail
      name: A command that fails
      command: 'echo "something went wrong" >&2; exit 3'
      confirm: 'This command fails on purpose. <b>Run it anyway?</b>'
"""


def _yaml() -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="rt", pure=True)


def _line_of(data: Any, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the node at `loc` in ruamel's round-trip data."""
    line: int | None = None
    node = data
    for key in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(key, int) and isinstance(node, list):
                if lc is not None:
                    line = lc.item(key)[0] + 1
                node = node[key]
            elif isinstance(node, dict) and key in node:
                if lc is not None:
                    line = lc.key(key)[0] + 1
                node = node[key]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    return line


def _value_at(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    node = data
    for key in loc:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, node


_ALIASES = {"is_async": "async"}


def _describe(error: ValidationError, data: Any, source: str) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(_ALIASES.get(str(k), k) if isinstance(k, str) else k for k in item["loc"])
        path = ".".join(str(k) for k in loc)
        line = _line_of(data, loc)
        found, value = _value_at(data, loc)
        where = f"{source}, line {line}" if line else source
        if item["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key '{path}'")
        elif found:
            lines.append(f"{where}: {path} = {value!r}: {item['msg']}")
        else:
            lines.append(f"{where}: {path}: {item['msg']}")
    return "\n".join(lines)


def parse(text: str, source: str = "<string>") -> Config:
    """Parse and validate config text; raise `ConfigError` with key, line and value."""
    from ruamel.yaml.error import YAMLError

    try:
        data = _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, found {type(data).__name__}")
    relevant = {k: data[k] for k in ("server", "system", "sysmenu") if k in data}
    try:
        config = Config.model_validate(relevant)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, source)) from None
    return config.model_copy(update={"source": source})


def load(path: str | os.PathLike[str] | None) -> Config:
    """Load `path`, or the built-in demo config when `path` is None."""
    if path is None:
        return parse(DEMO_CONFIG, "<built-in demo>")
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    return parse(text, str(file))
