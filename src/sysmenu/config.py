"""The configuration: OctoPrint's ``config.yaml`` format plus a ``sysmenu:`` section.

The file is parsed once into a typed `Config`. Only the sections sysmenu uses
are validated (``server.commands``, ``system.actions``, ``sysmenu``); the rest
of a real OctoPrint file is ignored. A bad value is a `ConfigError` naming the
key path, the line and the value.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import access
from .checks import Check, Invalid, Nested, optional, string
from .config_actions import ACTION_KEYS, DIVIDER, Action, entry_problems, entry_warnings
from .config_problems import Loc, Problem, describe, line_of
from .errors import ConfigError
from .mqtt_settings import MQTT_KEYS, MqttSettings, check_section
from .settings import DECLARATIONS, Settings


@dataclass(frozen=True)
class ServerCommands:
    systemShutdownCommand: str | None = None
    systemRestartCommand: str | None = None
    serverRestartCommand: str | None = None


@dataclass(frozen=True)
class ServerSection:
    commands: ServerCommands = ServerCommands()


@dataclass(frozen=True)
class SystemSection:
    actions: list[Action] = field(default_factory=list)


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
            if entry.action != DIVIDER:
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
    name: (name, optional(string())) for name in ServerCommands.__dataclass_fields__
}
SETTINGS_KEYS: dict[str, tuple[str, Check]] = {d.name: (d.name, d.check) for d in DECLARATIONS}


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
            except Invalid as exc:
                self.problems.append(((*loc, key), str(exc), False))
            except Nested as exc:
                self.problems.extend(((*loc, key, *where), what, False) for where, what in exc.problems)
        for key in required:
            if key not in data:
                (self.warnings if warn else self.problems).append(((*loc, key), "Field required", False))
        return values

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
            self.problems.extend(((*loc, key), what, False) for key, what in entry_problems(values))
            if "action" in values:
                actions.append(Action(**values))
                self.warnings.extend(((*loc, key), why, False) for key, why in entry_warnings(values))
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
        raise ConfigError(describe(validator.problems, data, tree, source))
    warnings = describe(validator.warnings, data, tree, source).splitlines() if validator.warnings else []
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
        line = line_of(tree, loc)
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
