"""How a run's validated argument values reach its command: never as shell code.

``/bin/sh -c COMMAND NAME VALUE...`` gets them as positional parameters (``"$1"``,
``"$@"``), every command also as ``SYSMENU_ARG_<NAME>`` variables, and an ``argv``
entry gets each placeholder's value inside exactly one element. History, audit and
logs keep them with secrets masked; a retried request is matched by a salted digest.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .arguments import ArgumentSpec, Value, as_text
from .catalogue import SHELL, CommandSpec
from .environment import command_environment

MASK = "********"


def masked(specs: Sequence[ArgumentSpec], values: Mapping[str, Value]) -> dict[str, Value]:
    """`values` with secrets replaced: what history, audit and logs keep."""
    secret = {spec.name for spec in specs if spec.secret}
    return {name: MASK if name in secret else value for name, value in values.items()}


def fingerprint(values: Mapping[str, Value], salt: str | None = None) -> str:
    """A salted digest of every value (secrets included) to tell a retried request's
    arguments from other ones without keeping the secrets: ``salt$sha256``."""
    salt = salt or secrets.token_hex(8)
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False)
    return salt + "$" + hashlib.sha256((salt + canonical).encode("utf-8")).hexdigest()


def same_values(values: Mapping[str, Value], recorded: str | None) -> bool:
    if recorded is None:
        return not values
    salt = recorded.split("$", 1)[0]
    return secrets.compare_digest(fingerprint(values, salt), recorded)


def environment(specs: Sequence[ArgumentSpec], values: Mapping[str, Value]) -> dict[str, str]:
    """``SYSMENU_ARG_<NAME>`` for each argument that has a value."""
    return {spec.env_name: as_text(values[spec.name]) for spec in specs if spec.name in values}


def positional(specs: Sequence[ArgumentSpec], values: Mapping[str, Value]) -> list[str]:
    """``$1``..``$n`` in declared order; an optional argument without a value is empty."""
    return [as_text(values[spec.name]) if spec.name in values else "" for spec in specs]


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one run executes: its argv, the variables it adds, and its values as recorded."""

    argv: list[str]
    extra_env: dict[str, str]
    shown: dict[str, Value] | None = None  # secrets masked; None: the command takes no arguments
    digest: str | None = None

    @classmethod
    def of(cls, spec: CommandSpec, values: Mapping[str, Value]) -> Invocation:
        """The invocation of `spec` with checked `values`; `ArgumentsInvalid` for an
        option-like value in an argv placeholder that does not allow one."""
        env = environment(spec.arguments, values)
        if spec.argv is not None:
            argv = spec.argv.render(spec.arguments, values)
        elif not spec.arguments:  # exactly what it always was
            argv = [SHELL, "-c", spec.command or ""]
        else:
            argv = [SHELL, "-c", spec.command or "", spec.action, *positional(spec.arguments, values)]
        if not spec.arguments:
            return cls(argv, env)
        return cls(argv, env, masked(spec.arguments, values), fingerprint(values))

    def recorded(self) -> tuple[dict[str, Value], str] | None:
        """What the run log keeps: the shown values and the digest of all of them."""
        if self.shown is None or self.digest is None:
            return None
        return self.shown, self.digest

    def environment(self, configured: Mapping[str, str]) -> dict[str, str]:
        """The command's whole environment: the minimal one (environment.py, never the
        server's own), then what the config adds, then the arguments' variables."""
        return command_environment(configured, self.extra_env)
