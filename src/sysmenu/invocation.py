"""How a run's validated argument values reach its command: never as shell code.

``/bin/sh -c COMMAND NAME VALUE...`` gets them as positional parameters (``"$1"``,
``"$@"``), every command also as ``SYSMENU_ARG_<NAME>`` variables, and an ``argv``
entry gets each placeholder's value inside exactly one element. History, audit and
logs keep them with secrets masked; a retried request is matched by a salted digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .arguments import NAME, ArgumentsInvalid, ArgumentSpec, Value

MASK = "********"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def as_text(value: Value) -> str:
    """How a value reaches the command: bools as true/false, numbers in decimal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


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


@dataclass(frozen=True, slots=True)
class ArgvTemplate:
    """An ``argv`` list: literal text and ``{name}`` placeholders, each element one argument."""

    parts: tuple[tuple[tuple[str, bool], ...], ...]  # per element: (text, is_placeholder)

    def names(self) -> set[str]:
        return {text for element in self.parts for text, placeholder in element if placeholder}

    def render(self, specs: Sequence[ArgumentSpec], values: Mapping[str, Value]) -> list[str]:
        by_name = {spec.name: spec for spec in specs}
        argv = []
        for element in self.parts:
            out = []
            for index, (text, placeholder) in enumerate(element):
                if not placeholder:
                    out.append(text)
                    continue
                value = as_text(values[text]) if text in values else ""
                if index == 0 and value.startswith("-") and not by_name[text].allow_option:
                    raise ArgumentsInvalid({text: "may not start with '-' (it would read as an option)"})
                out.append(value)
            argv.append("".join(out))
        return argv


def parse_template(element: str) -> tuple[tuple[str, bool], ...]:
    """One argv element split into literal text and placeholders; ``{{``/``}}`` are braces.

    Raises ValueError for a lone brace or a placeholder that is not a name."""
    parts: list[tuple[str, bool]] = []
    literal: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(element):
        literal.append(element[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match.group(1) is not None and NAME.fullmatch(match.group(1)):
            if "".join(literal):
                parts.append(("".join(literal), False))
            literal = []
            parts.append((match.group(1), True))
        else:
            raise ValueError(f"{token!r} is not a placeholder: write {{name}}, or {{{{ and }}}} for braces")
    literal.append(element[position:])
    if "".join(literal):
        parts.append(("".join(literal), False))
    return tuple(parts)


def environment(specs: Sequence[ArgumentSpec], values: Mapping[str, Value]) -> dict[str, str]:
    """``SYSMENU_ARG_<NAME>`` for each argument that has a value."""
    return {spec.env_name: as_text(values[spec.name]) for spec in specs if spec.name in values}


def positional(specs: Sequence[ArgumentSpec], values: Mapping[str, Value]) -> list[str]:
    """``$1``..``$n`` in declared order; an optional argument without a value is empty."""
    return [as_text(values[spec.name]) if spec.name in values else "" for spec in specs]
