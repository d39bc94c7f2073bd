"""One entry of ``system.actions``: its record (`Action`), the check of each of its keys
(`ACTION_KEYS`) and what is checked across keys (`entry_problems`, `entry_warnings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import access
from .argument_config import declare
from .arguments import ArgumentSpec
from .argv import ArgvTemplate, parse_template
from .checks import (
    Check,
    Invalid,
    Nested,
    boolean,
    checked,
    choice,
    confirm,
    environment,
    number,
    optional,
    string,
)

DIVIDER = "divider"  # the action id of an entry that is a divider line in the menu


def _arguments(value: Any) -> tuple[ArgumentSpec, ...]:
    specs, problems = declare(value)
    if problems:
        raise Nested(problems)
    return specs


def _argv(value: Any) -> ArgvTemplate:
    if not isinstance(value, list) or not value:
        raise Invalid("Input should be a non-empty list of strings")
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
        raise Nested(problems)
    if not elements[0] or any(placeholder for _, placeholder in elements[0]):
        raise Nested([((0,), "the program must be fixed text, not a placeholder")])
    return ArgvTemplate(tuple(elements))


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


# key in the file -> (attribute, check); `action` is required (config.py says so)
ACTION_KEYS: dict[str, tuple[str, Check]] = {
    "action": ("action", string(1)),
    "name": ("name", optional(string())),
    "command": ("command", optional(string())),
    "confirm": ("confirm", confirm),
    "async": ("is_async", boolean),
    "ignore": ("ignore", boolean),
    "debug": ("debug", boolean),
    "timeout": ("timeout", optional(number(gt=0))),
    "concurrency": ("concurrency", number(integer=True, ge=1)),
    "queue": ("queue", boolean),
    "fresh_credentials": ("fresh_credentials", boolean),
    "arguments": ("arguments", _arguments),
    "argv": ("argv", _argv),
    "allow": ("allow", checked(access.check_names)),
    "deny": ("deny", checked(access.check_names)),
    "mqtt": ("mqtt", optional(boolean)),
    "leftovers": ("leftovers", choice("keep", "kill")),
    "environment": ("environment", environment),
}


assert {a for a, _ in ACTION_KEYS.values()} == set(Action.__dataclass_fields__)


def entry_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """An entry runs `command` or `argv`, not both; placeholders name its arguments.
    `values`: its checked keys by attribute; returns (key, problem) pairs."""
    argv: ArgvTemplate | None = values.get("argv")
    if argv is None:
        return []
    problems = []
    if values.get("command"):
        problems.append(("argv", "give either command or argv, not both"))
    declared = {spec.name for spec in values.get("arguments", ())}
    problems += [
        ("argv", f"placeholder {{{name}}} names no declared argument")
        for name in sorted(argv.names() - declared)
    ]
    return problems


def entry_warnings(values: dict[str, Any]) -> list[tuple[str, str]]:
    """What OctoPrint accepts in an entry but is a mistake: (key, why) pairs."""
    action = values.get("action")
    if action is not None and ("/" in action or action.strip() in (".", "..")):
        return [("action", "can never be run: no URL reaches an action id that is '.', '..' or holds '/'")]
    return []
