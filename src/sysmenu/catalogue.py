"""The catalogue: every command spec, by source, built once per config load.

It also renders the client projection (the API's list shape). That projection
depends only on the config and the request's base URL, so it is rendered once
per base URL and kept (bounded, as the Host header is client data).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .access import SOURCES, Rule
from .arguments import ArgumentSpec
from .argv import ArgvTemplate
from .config import Config
from .config_actions import DIVIDER

log = logging.getLogger("sysmenu")

SHELL = "/bin/sh"
_Rules = Mapping[tuple[str, str], Rule]  # (source, action) -> its allow/deny
# What a URL path segment may hold unescaped (the WHATWG path-segment set, as Werkzeug
# builds OctoPrint's URLs): `grüß` becomes `gr%C3%BC%C3%9F`, `a b` becomes `a%20b`.
_SEGMENT_SAFE = "!$&'()*+,/:;=@"

_DISRUPT = "Anything running on this machine will be interrupted."
CORE_CONFIRM = {
    "shutdown": "You are about to shut down the system. " + _DISRUPT,
    "reboot": "You are about to reboot the system. " + _DISRUPT,
    "restart": "You are about to restart the server. " + _DISRUPT,
    "restart_safe": "You are about to restart the server in safe mode. " + _DISRUPT,
}


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command of the menu, as sysmenu runs it."""

    source: str
    action: str
    name: str
    command: str | None = None
    confirm: str | None = None
    is_async: bool = False
    ignore: bool = False
    timeout: float | None = None
    concurrency: int = 1
    queue: bool = True
    fresh_credentials: bool = False
    arguments: tuple[ArgumentSpec, ...] = ()
    argv: ArgvTemplate | None = None
    mqtt: bool | None = None  # the entry's `mqtt:`; None follows sysmenu.mqtt.expose
    leftovers: str = "keep"  # "kill": background processes end with the command
    # what the config adds to the command's environment (environment.py), in order
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def is_divider(self) -> bool:
        return self.action == DIVIDER

    @property
    def runnable(self) -> bool:
        return self.command is not None or self.argv is not None  # '' runs, as in OctoPrint

    @property
    def command_line(self) -> str | None:
        """The command line as a person reads it: `command`, or the `argv` list quoted
        with its ``{name}`` placeholders (what the doctor and the rules look at)."""
        if self.argv is not None:
            return shlex.join(self.argv.shown())
        return self.command or None

    def client_spec(self, base_url: str) -> dict[str, Any]:
        """The restricted form the API shows: no command line, ever."""
        action = quote(self.action, safe=_SEGMENT_SAFE)
        resource = f"{base_url}api/system/commands/{self.source}/{action}"
        spec: dict[str, Any] = {"action": self.action}
        if self.name or not self.is_divider:  # a divider has a name only when given one
            spec["name"] = self.name
        if self.confirm:
            spec["confirm"] = self.confirm
        spec["source"] = self.source
        spec["resource"] = resource
        if self.fresh_credentials:
            spec["fresh_credentials"] = True
        if self.arguments:
            spec["arguments"] = [argument.public() for argument in self.arguments]
        return spec


def _core_specs(config: Config) -> list[CommandSpec]:
    cmds = config.server.commands
    specs = []
    # The machine goes down with the server: run these asynchronously and
    # ignore the exit status, else the response could never be sent.
    if cmds.systemShutdownCommand:
        specs.append(
            CommandSpec(
                "core",
                "shutdown",
                "Shutdown",
                cmds.systemShutdownCommand,
                CORE_CONFIRM["shutdown"],
                True,
                True,
                fresh_credentials=True,
            )
        )
    if cmds.systemRestartCommand:
        specs.append(
            CommandSpec(
                "core",
                "reboot",
                "Reboot",
                cmds.systemRestartCommand,
                CORE_CONFIRM["reboot"],
                True,
                True,
                fresh_credentials=True,
            )
        )
    if cmds.serverRestartCommand:
        specs.append(
            CommandSpec(
                "core",
                "restart",
                "Restart server",
                cmds.serverRestartCommand,
                CORE_CONFIRM["restart"],
                True,
                True,
            )
        )
        specs.append(
            CommandSpec(
                "core",
                "restart_safe",
                "Restart server in safe mode",
                cmds.serverRestartCommand,
                CORE_CONFIRM["restart_safe"],
                True,
                True,
            )
        )
    return specs


def _custom_specs(config: Config) -> list[CommandSpec]:
    """The menu's entries in order. An action defined more than once is one entry, at the
    place of its first definition, with its last definition (what OctoPrint lists and runs)."""
    specs: dict[str | int, CommandSpec] = {}
    for index, entry in enumerate(config.system.actions):
        if entry.action == DIVIDER:
            specs[index] = CommandSpec("custom", DIVIDER, entry.name or "", confirm=entry.confirm)
            continue
        specs[entry.action] = CommandSpec(
            source="custom",
            action=entry.action,
            name=entry.name or entry.action,
            command=entry.command,
            confirm=entry.confirm,
            is_async=entry.is_async,
            ignore=entry.ignore,
            timeout=entry.timeout,
            concurrency=entry.concurrency,
            queue=entry.queue,
            fresh_credentials=entry.fresh_credentials,
            arguments=entry.arguments,
            argv=entry.argv,
            mqtt=entry.mqtt,
            leftovers=entry.leftovers,
            environment=tuple((config.sysmenu.environment | entry.environment).items()),
        )
    counts = Counter(entry.action for entry in config.system.actions if entry.action != DIVIDER)
    for action, count in counts.items():
        if count > 1:
            log.warning("system.actions: %r is defined %d times; its last definition is used", action, count)
    return list(specs.values())


class Catalogue:
    """All specs by source; lookups are dictionary hits."""

    _CACHE_SIZE = 16

    def __init__(self, config: Config) -> None:
        self.specs: dict[str, list[CommandSpec]] = {
            "core": [
                dataclasses.replace(spec, environment=tuple(config.sysmenu.environment.items()))
                for spec in _core_specs(config)
            ],
            "custom": _custom_specs(config),
            "plugin": [],
        }
        self._index: dict[tuple[str, str], CommandSpec] = {
            (source, spec.action): spec for source, specs in self.specs.items() for spec in specs
        }
        self._rendered: OrderedDict[tuple[str, str | None], bytes] = OrderedDict()

    def get(self, source: str, action: str) -> CommandSpec | None:
        return self._index.get((source, action))

    def all_specs(self) -> list[CommandSpec]:
        return [spec for source in SOURCES for spec in self.specs[source]]

    def diff(
        self, new: Catalogue, rules: tuple[_Rules | None, _Rules | None] = (None, None)
    ) -> dict[str, list[str]]:
        """What changes from this catalogue to `new`: commands (``source:action``) added,
        removed and changed (any field, or their access rule: `rules` is the old and the
        new ``{(source, action): Rule}``), for the audit log. Empty lists are left out."""
        old_rules, new_rules = rules[0] or {}, rules[1] or {}
        before = {k: v for k, v in self._index.items() if v.action != DIVIDER}
        after = {k: v for k, v in new._index.items() if v.action != DIVIDER}
        changed = [
            k
            for k in before.keys() & after.keys()
            if before[k] != after[k] or old_rules.get(k) != new_rules.get(k)
        ]
        found = {
            "added": sorted(f"{s}:{a}" for s, a in after.keys() - before.keys()),
            "removed": sorted(f"{s}:{a}" for s, a in before.keys() - after.keys()),
            "changed": sorted(f"{s}:{a}" for s, a in changed),
        }
        return {k: v for k, v in found.items() if v}

    def client_specs(self, base_url: str, source: str | None = None) -> object:
        """The API's list: all sources as an object, or one source as a list."""
        if source is not None:
            return [spec.client_spec(base_url) for spec in self.specs[source]]
        return {src: self.client_specs(base_url, src) for src in SOURCES}

    def rendered(self, base_url: str, source: str | None = None) -> bytes:
        """`client_specs` as JSON bytes, rendered once per base URL."""
        key = (base_url, source)
        body = self._rendered.get(key)
        if body is None:
            body = json.dumps(self.client_specs(base_url, source), ensure_ascii=False).encode()
            self._rendered[key] = body
            if len(self._rendered) > self._CACHE_SIZE:
                self._rendered.popitem(last=False)
        return body
