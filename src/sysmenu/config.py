"""The configuration: OctoPrint's ``config.yaml`` format plus a ``sysmenu:`` section.

The file is parsed once into a typed `Config`. Only the sections sysmenu uses
are validated (``server.commands``, ``system.actions``, ``sysmenu``); the rest
of a real OctoPrint file is ignored. A bad value is a `ConfigError` naming the
key path, the line and the value.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import access
from .argument_config import declare
from .arguments import ArgumentSpec
from .argv import ArgvTemplate, parse_template
from .errors import ConfigError
from .mqtt_settings import EXPOSE, InvalidSetting, MqttSettings, check_section, topic_prefix_check

DEFAULT_PORT = 5000
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")

# Validation is a few plain functions rather than a schema library: the sections are
# small, and the server's memory and start-up time are worth more (pydantic alone
# was a third of the resident memory).


class _Invalid(Exception):
    """A value that does not fit; the message says why (the caller adds where)."""


class _Nested(Exception):
    """Problems inside a structured value, each with its place below the key."""

    def __init__(self, problems: list[tuple[tuple[int | str, ...], str]]) -> None:
        super().__init__(problems)
        self.problems = problems


Check = Callable[[Any], Any]


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _string(min_length: int = 0) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid("Input should be a valid string")
        if len(value.strip()) < min_length:
            raise _Invalid(f"String should have at least {min_length} character")
        return value

    return check


_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Invalid("Input should be a valid boolean")


def _number(
    integer: bool = False, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> Check:
    kind = "integer" if integer else "number"

    def check(value: Any) -> float | int:
        if isinstance(value, bool):
            raise _Invalid(f"Input should be a valid {kind}")
        number: float | int
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip()) if integer else float(value.strip())
            except ValueError:
                raise _Invalid(f"Input should be a valid {kind}") from None
        else:
            raise _Invalid(f"Input should be a valid {kind}")
        if number != number or number in (float("inf"), float("-inf")):
            raise _Invalid(f"Input should be a finite {kind}")
        if integer:
            if number != int(number):
                raise _Invalid("Input should be a valid integer")
            number = int(number)
        else:
            number = float(number)
        if gt is not None and not number > gt:
            raise _Invalid(f"Input should be greater than {gt:g}")
        if ge is not None and not number >= ge:
            raise _Invalid(f"Input should be greater than or equal to {ge:g}")
        if le is not None and not number <= le:
            raise _Invalid(f"Input should be less than or equal to {le:g}")
        return number

    return check


def _choice(*choices: str) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            names = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
            raise _Invalid(f"Input should be {names}")
        return str(value)

    return check


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise _Invalid("Input should be a valid path")
    return Path(value)


def _networks(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _Invalid("Input should be a valid list")
    for item in value:
        if not isinstance(item, str):
            raise _Invalid(f"not an IP address or network: {item!r}")
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise _Invalid(f"not an IP address or network: {item!r}") from None
    return list(value)


def _arguments(value: Any) -> tuple[ArgumentSpec, ...]:
    specs, problems = declare(value)
    if problems:
        raise _Nested(problems)
    return specs


def _argv(value: Any) -> ArgvTemplate:
    if not isinstance(value, list) or not value:
        raise _Invalid("Input should be a non-empty list of strings")
    elements = []
    problems: list[tuple[tuple[int | str, ...], str]] = []
    for index, element in enumerate(value):
        if not isinstance(element, str) or "\x00" in element:
            problems.append(((index,), "Input should be a valid string"))
            continue
        try:
            elements.append(parse_template(element))
        except ValueError as exc:
            problems.append(((index,), str(exc)))
    if problems:
        raise _Nested(problems)
    if not elements[0] or any(placeholder for _, placeholder in elements[0]):
        raise _Nested([((0,), "the program must be fixed text, not a placeholder")])
    return ArgvTemplate(tuple(elements))


def _checked(check: Callable[[Any], Any]) -> Check:
    """A checker from a function that raises ValueError (the access and retention rules)."""

    def wrapped(value: Any) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None

    return wrapped


@dataclass(frozen=True)
class Retention:
    """How long history is kept: the newest `count` entries, none older than `days` (None: no limit)."""

    days: float | None
    count: int | None


def _retention(value: Any) -> Retention:
    if not isinstance(value, dict) or not value or set(value) - {"days", "count"}:
        raise _Invalid("Input should be a mapping with days and/or count")
    days = _optional(_number(gt=0))(value.get("days"))
    count = _optional(_number(integer=True, ge=1))(value.get("count"))
    return Retention(days, count)


def _hosts(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise _Invalid("Input should be a list of host names or addresses")
    return [item.strip() for item in value]


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _environment(value: Any) -> dict[str, str]:
    """Variables for commands: names as a shell accepts them, scalar values (as text)."""
    if not isinstance(value, dict):
        raise _Invalid("Input should be a mapping of variable names to values")
    env: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise _Invalid(f"not a valid variable name: {name!r}")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _Invalid(f"{name}: the value should be a string or a number")
        if "\0" in str(item):
            raise _Invalid(f"{name}: the value holds a NUL character")
        env[name] = str(item)
    return env


def _confirm(value: Any) -> str | None:
    # OctoPrint configs write `confirm: false` to mean "no confirmation".
    if value is False or value is None:
        return None
    text: str = _string()(value)
    return text


@dataclass(frozen=True)
class ServerCommands:
    systemShutdownCommand: str | None = None
    systemRestartCommand: str | None = None
    serverRestartCommand: str | None = None


@dataclass(frozen=True)
class ServerSection:
    commands: ServerCommands = ServerCommands()


@dataclass(frozen=True)
class Action:
    """One entry of ``system.actions`` (OctoPrint's keys plus sysmenu's)."""

    action: str
    name: str | None = None
    command: str | None = None
    confirm: str | None = None
    is_async: bool = False
    ignore: bool = False
    debug: bool = False  # OctoPrint's: log the command line; sysmenu records every run anyway
    # sysmenu's own per-command settings
    timeout: float | None = None
    concurrency: int = 1
    queue: bool = True  # a further request waits for its turn; `queue: false` answers 409
    fresh_credentials: bool = False
    arguments: tuple[ArgumentSpec, ...] = ()
    argv: ArgvTemplate | None = None
    allow: tuple[str, ...] = ()  # users or groups who may run it without SYSTEM
    deny: tuple[str, ...] = ()  # users or groups who may not run it, even with SYSTEM
    mqtt: bool | None = None  # shown over MQTT: None follows sysmenu.mqtt.expose
    leftovers: str = "keep"  # what happens to background processes at a normal end
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemSection:
    actions: list[Action] = field(default_factory=list)


@dataclass(frozen=True)
class Settings:
    """The ``sysmenu:`` section: sysmenu's own settings."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path | None = None
    default_timeout: float = 300.0
    kill_grace: float = 5.0
    output_limit: int = 1_048_576
    trusted_proxies: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    log_level: str = "info"
    reload_interval: float = 2.0
    header_timeout: float = 10.0
    max_header_bytes: int = 32768
    max_connections: int = 256
    max_connections_per_address: int = 32
    connection_cap_exempt: list[str] | None = None  # None: the trusted proxies
    write_timeout: float = 30.0
    key_failure_limit: int = 10
    key_failure_window: float = 60.0
    idle_exit: float = 0.0
    log_format: str = "text"
    access_log: bool = False
    metrics_open: bool = False
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    core_access: dict[str, access.Rule] = field(default_factory=dict)
    keep_runs: Retention = Retention(days=90, count=2000)
    keep_audit: Retention = Retention(days=365, count=50000)
    strict: bool = False  # what OctoPrint accepts but sysmenu warns about becomes an error
    mqtt: MqttSettings | None = None  # None: MQTT off
    allowed_hosts: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    server: ServerSection = ServerSection()
    system: SystemSection = SystemSection()
    sysmenu: Settings = Settings()
    source: str = "<built-in>"
    # What OctoPrint accepts but is likely a mistake (an unknown key in an action entry, an
    # entry without `action`, an action id no URL can reach): one line each, naming file,
    # line and key. Logged, shown by check-config and /api/status; errors with `strict`.
    warnings: tuple[str, ...] = ()
    # where each allow/deny is written ("custom:backup:deny" -> "config.yaml, line 12"),
    # so that a rule naming nobody is reported at its line
    rule_lines: dict[str, str] = field(default_factory=dict, compare=False)

    def access_rules(self) -> dict[tuple[str, str], access.Rule]:
        """Every command's allow/deny: core ones from ``sysmenu.core_access``, custom ones
        from their entries (the last definition of an action, as the catalogue)."""
        rules = {("core", action): rule for action, rule in self.sysmenu.core_access.items()}
        for entry in self.system.actions:
            if entry.action != "divider":
                rules[("custom", entry.action)] = access.Rule(frozenset(entry.allow), frozenset(entry.deny))
        return rules

    def rule_line(self, source: str, action: str, name: str) -> str:
        """Where `name` is written in the rule of `source:action` (file and line)."""
        rule = self.access_rules().get((source, action))
        key = "allow" if rule is not None and name in rule.allow else "deny"
        return self.rule_lines.get(f"{source}:{action}:{key}", self.source)

    def data_dir(self) -> Path:
        """Where state lives: the configured dir, else the per-user data dir."""
        if self.sysmenu.data_dir is not None:
            return self.sysmenu.data_dir.expanduser()
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "sysmenu"


_T = TypeVar("_T", Config, Settings)


def replace(obj: _T, **changes: Any) -> _T:
    """A copy of a config object with `changes` (they are frozen)."""
    return dataclasses.replace(obj, **changes)


# key in the file -> (attribute, check); required keys are named where they are checked
SERVER_COMMAND_KEYS: dict[str, tuple[str, Check]] = {
    name: (name, _optional(_string())) for name in ServerCommands.__dataclass_fields__
}
ACTION_KEYS: dict[str, tuple[str, Check]] = {
    "action": ("action", _string(1)),
    "name": ("name", _optional(_string())),
    "command": ("command", _optional(_string())),
    "confirm": ("confirm", _confirm),
    "async": ("is_async", _bool),
    "ignore": ("ignore", _bool),
    "debug": ("debug", _bool),
    "timeout": ("timeout", _optional(_number(gt=0))),
    "concurrency": ("concurrency", _number(integer=True, ge=1)),
    "queue": ("queue", _bool),
    "fresh_credentials": ("fresh_credentials", _bool),
    "arguments": ("arguments", _arguments),
    "argv": ("argv", _argv),
    "allow": ("allow", _checked(access.check_names)),
    "deny": ("deny", _checked(access.check_names)),
    "mqtt": ("mqtt", _optional(_bool)),
    "leftovers": ("leftovers", _choice("keep", "kill")),
    "environment": ("environment", _environment),
}
SETTINGS_KEYS: dict[str, tuple[str, Check]] = {
    "host": ("host", _string(1)),
    "port": ("port", _number(integer=True, ge=1, le=65535)),
    "data_dir": ("data_dir", _optional(_path)),
    "default_timeout": ("default_timeout", _number(gt=0)),
    "kill_grace": ("kill_grace", _number(ge=0)),
    "output_limit": ("output_limit", _number(integer=True, ge=1024)),
    "trusted_proxies": ("trusted_proxies", _networks),
    "log_level": ("log_level", _choice(*LOG_LEVELS)),
    "reload_interval": ("reload_interval", _number(ge=0)),
    "header_timeout": ("header_timeout", _number(gt=0)),
    "max_header_bytes": ("max_header_bytes", _number(integer=True, ge=1024)),
    "max_connections": ("max_connections", _number(integer=True, ge=1)),
    "max_connections_per_address": ("max_connections_per_address", _number(integer=True, ge=0)),
    "connection_cap_exempt": ("connection_cap_exempt", _optional(_networks)),
    "write_timeout": ("write_timeout", _number(gt=0)),
    "key_failure_limit": ("key_failure_limit", _number(integer=True, ge=1)),
    "key_failure_window": ("key_failure_window", _number(gt=0)),
    "idle_exit": ("idle_exit", _number(ge=0)),
    "log_format": ("log_format", _choice(*LOG_FORMATS)),
    "access_log": ("access_log", _bool),
    "metrics_open": ("metrics_open", _bool),
    "groups": ("groups", _checked(access.check_groups)),
    "core_access": ("core_access", _checked(access.check_core_access)),
    "keep_runs": ("keep_runs", _retention),
    "keep_audit": ("keep_audit", _retention),
    "strict": ("strict", _bool),
    "mqtt": ("mqtt", lambda value: value),  # a section: checked key by key with MQTT_KEYS
    "allowed_hosts": ("allowed_hosts", _hosts),
    "environment": ("environment", _environment),
}


def _topic_prefix(value: Any) -> str:
    try:
        return topic_prefix_check(value)
    except InvalidSetting as exc:
        raise _Invalid(str(exc)) from None


MQTT_KEYS: dict[str, tuple[str, Check]] = {
    "host": ("host", _string(1)),
    "port": ("port", _number(integer=True, ge=1, le=65535)),
    "tls": ("tls", _bool),
    "ca_file": ("ca_file", _optional(_path)),
    "cert_file": ("cert_file", _optional(_path)),
    "key_file": ("key_file", _optional(_path)),
    "username": ("username", _optional(_string(1))),
    "password_file": ("password_file", _optional(_path)),
    "password_env": ("password_env", _optional(_string(1))),
    "client_id": ("client_id", _optional(_string(1))),
    "topic_prefix": ("topic_prefix", _optional(_topic_prefix)),
    "discovery": ("discovery", _bool),
    "discovery_prefix": ("discovery_prefix", _topic_prefix),
    "expose": ("expose", _choice(*EXPOSE)),
    "keepalive": ("keepalive", _number(integer=True, ge=5, le=65535)),
    "configuration_url": ("configuration_url", _optional(_string(1))),
    "buffer": ("buffer", _number(integer=True, ge=0)),
    "reconnect_max": ("reconnect_max", _number(gt=0)),
}
assert {a for a, _ in SETTINGS_KEYS.values()} == set(Settings.__dataclass_fields__)
assert {a for a, _ in ACTION_KEYS.values()} == set(Action.__dataclass_fields__)
assert {a for a, _ in MQTT_KEYS.values()} == set(MqttSettings.__dataclass_fields__)

Loc = tuple[int | str, ...]
Problem = tuple[Loc, str, bool]  # where, what, whether it is an unknown key


class _Validator:
    """Collects every problem of a file, not only the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []  # what OctoPrint accepts (see Config.warnings)

    def mapping(self, value: Any, loc: Loc) -> dict[Any, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.append((loc, "Input should be a valid dictionary", False))
            return None
        return value

    def fields(
        self,
        data: dict[Any, Any],
        loc: Loc,
        keys: dict[str, tuple[str, Check]],
        strict: bool,
        required: tuple[str, ...] = (),
        warn: bool = False,
    ) -> dict[str, Any]:
        """The checked values of `data` by attribute. Strict: unknown keys are errors
        (typos in sysmenu's own sections); lenient: ignored, and null means default
        (OctoPrint's sections, where YAML writes an empty value as null)."""
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in keys:
                if warn:  # OctoPrint ignores it: a plugin's key, an old guide's, or a typo
                    self.warnings.append(((*loc, str(key)), "unknown key", True))
                elif strict:
                    self.problems.append(((*loc, str(key)), "unknown key", True))
                continue
            if value is None and not strict:
                continue
            attribute, check = keys[key]
            try:
                values[attribute] = check(value)
            except _Invalid as exc:
                self.problems.append(((*loc, key), str(exc), False))
            except _Nested as exc:
                self.problems.extend(((*loc, key, *where), what, False) for where, what in exc.problems)
        for key in required:
            if key not in data:
                (self.warnings if warn else self.problems).append(((*loc, key), "Field required", False))
        return values

    def _invocation(self, values: dict[str, Any], loc: Loc) -> None:
        """An entry runs `command` or `argv`, not both; placeholders name its arguments."""
        argv: ArgvTemplate | None = values.get("argv")
        if argv is None:
            return
        if values.get("command"):
            self.problems.append(((*loc, "argv"), "give either command or argv, not both", False))
        declared = {spec.name for spec in values.get("arguments", ())}
        for name in sorted(argv.names() - declared):
            self.problems.append(
                ((*loc, "argv"), f"placeholder {{{name}}} names no declared argument", False)
            )

    def config(self, data: dict[Any, Any]) -> Config:
        server = self.mapping(data.get("server"), ("server",)) or {}
        commands = self.mapping(server.get("commands"), ("server", "commands")) or {}
        server_commands = ServerCommands(
            **self.fields(commands, ("server", "commands"), SERVER_COMMAND_KEYS, strict=False)
        )
        system = self.mapping(data.get("system"), ("system",)) or {}
        actions: list[Action] = []
        raw_actions = system.get("actions")
        if raw_actions is not None and not isinstance(raw_actions, list):
            self.problems.append((("system", "actions"), "Input should be a valid list", False))
            raw_actions = None  # its characters or keys are not entries
        for index, entry in enumerate(raw_actions or []):
            loc: Loc = ("system", "actions", index)
            if not isinstance(entry, dict):  # null too: an entry, unlike a section, has no default
                self.problems.append((loc, "Input should be a valid dictionary", False))
                continue
            values = self.fields(entry, loc, ACTION_KEYS, strict=True, required=("action",), warn=True)
            self._invocation(values, loc)
            if "action" in values:
                actions.append(Action(**values))
                if "/" in values["action"] or values["action"].strip() in (".", ".."):
                    why = "can never be run: no URL reaches an action id that is '.', '..' or holds '/'"
                    self.warnings.append(((*loc, "action"), why, False))
        settings = self.mapping(data.get("sysmenu"), ("sysmenu",)) or {}
        values = self.fields(settings, ("sysmenu",), SETTINGS_KEYS, strict=True)
        values["mqtt"] = self.mqtt(settings.get("mqtt"))
        return Config(
            server=ServerSection(server_commands),
            system=SystemSection(actions),
            sysmenu=Settings(**values),
        )

    def mqtt(self, raw: Any) -> MqttSettings | None:
        """``sysmenu.mqtt``: absent or null means MQTT off."""
        loc: Loc = ("sysmenu", "mqtt")
        if raw is None:
            return None
        section = self.mapping(raw, loc)
        if section is None:
            return None
        values = self.fields(section, loc, MQTT_KEYS, strict=True)
        problems = check_section(values)
        for key, message in problems:
            self.problems.append(((*loc, key), message, False))
        return None if problems or "host" not in values else MqttSettings(**values)


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


def _load_yaml(text: str) -> tuple[Any, Any]:
    """The data of `text` and its node tree (for line numbers), read as OctoPrint reads
    its config: PyYAML's safe loader (YAML 1.1: ``yes`` and ``on`` are booleans), in C
    where libyaml is there."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


def _line_of(node: Any, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the key (or list item) at `loc` in a YAML node tree: as deep
    as the path exists, so a missing key is placed at its parent."""
    line: int | None = None
    for key in loc:
        children = getattr(node, "value", None)
        if not isinstance(children, list):
            break
        if isinstance(key, int) and node.id == "sequence" and 0 <= key < len(children):
            node = children[key]
            line = node.start_mark.line + 1
        elif node.id == "mapping":
            # the last of duplicate keys is the one in force, as in the loaded data
            pairs = [(k, v) for k, v in children if getattr(k, "value", None) == str(key)]
            if not pairs:
                break
            key_node, node = pairs[-1]
            line = key_node.start_mark.line + 1
        else:
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


def _describe(problems: list[Problem], data: Any, tree: Any, source: str) -> str:
    lines = []
    for loc, message, unknown in problems:
        path = ".".join(str(k) for k in loc)
        line = _line_of(tree, loc)
        found, value = _value_at(data, loc)
        where = f"{source}, line {line}" if line else source
        if unknown:
            lines.append(f"{where}: unknown key '{path}'")
        elif found:
            lines.append(f"{where}: {path} = {value!r}: {message}")
        else:
            lines.append(f"{where}: {path}: {message}")
    return "\n".join(lines)


def parse(text: str, source: str = "<string>") -> Config:
    """Parse and validate config text; raise `ConfigError` with key, line and value."""
    from yaml import YAMLError

    try:
        data, tree = _load_yaml(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, found {type(data).__name__}")
    validator = _Validator()
    config = validator.config(data)
    if validator.problems:
        raise ConfigError(_describe(validator.problems, data, tree, source))
    warnings = _describe(validator.warnings, data, tree, source).splitlines() if validator.warnings else []
    if warnings and config.sysmenu.strict:
        raise ConfigError("\n".join([*warnings, "(sysmenu.strict is on: these warnings are errors)"]))
    return replace(
        config, source=source, warnings=tuple(warnings), rule_lines=_rule_lines(config, tree, source)
    )


def _rule_lines(config: Config, tree: Any, source: str) -> dict[str, str]:
    """Where each command's ``allow`` and ``deny`` are written (see `Config.rule_lines`)."""
    places: dict[str, tuple[int | str, ...]] = {}
    for action in config.sysmenu.core_access:
        for key in ("allow", "deny"):
            places[f"core:{action}:{key}"] = ("sysmenu", "core_access", action, key)
    for index, entry in enumerate(config.system.actions):
        for key in ("allow", "deny"):
            places[f"custom:{entry.action}:{key}"] = ("system", "actions", index, key)
    lines = {}
    for name, loc in places.items():
        line = _line_of(tree, loc)
        lines[name] = f"{source}, line {line}" if line else source
    return lines


def check_access(config: Config, users: list[str], stored_groups: list[str]) -> None:
    """Every name in an ``allow`` or ``deny`` is a known user or group (built-in, from
    ``sysmenu.groups`` or the database); else `ConfigError` naming file, line and name."""
    known = {*users, *stored_groups, *access.BUILTIN_GROUPS, *config.sysmenu.groups}
    problems = [
        f"{config.rule_line(source, action, name)}: {source}:{action}: unknown user or group {name!r} "
        f"(known: {', '.join(sorted(known))})"
        for source, action, name in access.unknown_names(config.access_rules(), known)
    ]
    if problems:
        raise ConfigError("\n".join(problems))


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
