"""An ``argv`` entry: the program and its arguments as a list, run without a shell.

Each element is literal text and ``{name}`` placeholders; a value fills its place
inside that one element and can never split it, join it to another or become an
option unless its argument allows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .arguments import NAME, ArgumentsInvalid, ArgumentSpec, Value, as_text

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass(frozen=True, slots=True)
class ArgvTemplate:
    """An ``argv`` list: literal text and ``{name}`` placeholders, each element one argument."""

    parts: tuple[tuple[tuple[str, bool], ...], ...]  # per element: (text, is_placeholder)

    def shown(self) -> list[str]:
        """The elements with their placeholders written as ``{name}``."""
        return [
            "".join(f"{{{text}}}" if placeholder else text for text, placeholder in e) for e in self.parts
        ]

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
