"""The ``arguments`` list of an action entry, read into `ArgumentSpec`s at load.

Every problem is reported with its place below ``arguments`` (the config adds the
entry's path, line and value): unknown keys, keys that belong to another type, a
pattern that does not compile, a default that breaks its own rule.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from .arguments import MAX_MAX_LENGTH, NAME, TYPES, ArgumentError, ArgumentSpec, Choice


def real_root(text: str) -> str:
    """A root as it is on disk: absolute, with symlinks resolved (values are compared to it)."""
    return os.path.realpath(os.path.expanduser(text))


Problems = list[tuple[tuple[int | str, ...], str]]  # (where below ``arguments``, what)

_COMMON = {"name", "type", "description", "label", "default", "required", "secret"}
_BY_TYPE = {
    "string": {"pattern", "max_length", "allow_option"},
    "int": {"min", "max", "allow_option"},
    "float": {"min", "max", "allow_option"},
    "bool": set(),
    "choice": {"choices", "allow_option"},
    "path": {"roots", "must_exist", "max_length", "allow_option"},
}


def declare(raw: Any) -> tuple[tuple[ArgumentSpec, ...], Problems]:
    """Argument specs from an entry's ``arguments`` value, and every problem found
    (each with its place below ``arguments``)."""
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        return (), [((), "Input should be a list of arguments")]
    specs: list[ArgumentSpec] = []
    problems: Problems = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        spec, found = _declare_one(item)
        problems.extend(((index, *where), what) for where, what in found)
        if spec is None:
            continue
        if spec.name.lower() in seen:
            problems.append(((index, "name"), f"argument {spec.name!r} is declared twice"))
            continue
        seen.add(spec.name.lower())
        specs.append(spec)
    return tuple(specs), problems


def _declare_one(item: Any) -> tuple[ArgumentSpec | None, Problems]:
    if not isinstance(item, dict):
        return None, [((), "Input should be a valid dictionary")]
    problems: Problems = []
    name, kind = item.get("name"), item.get("type")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append((("name",), "should be a name of letters, digits and _ (not starting with a digit)"))
    if not isinstance(kind, str) or kind not in TYPES:
        problems.append((("type",), "Input should be one of " + ", ".join(TYPES)))
    if problems or not isinstance(kind, str):
        return None, problems
    allowed = _COMMON | _BY_TYPE[kind]
    for key in item:
        if key not in allowed:
            other = [t for t, keys in _BY_TYPE.items() if key in keys]
            hint = f" (it applies to type {', '.join(other)})" if other else ""
            problems.append(((str(key),), f"unknown key for a {kind} argument{hint}"))
    values: dict[str, Any] = {"name": name, "type": kind}
    for key, attribute, check in _FIELDS:
        if key in item and key in allowed and item[key] is not None:
            try:
                values[attribute] = check(item[key])
            except ArgumentError as exc:
                problems.append(((key,), str(exc)))
    reported = {where for where, _ in problems}
    for needed, of in (("choices", "choice"), ("roots", "path")):
        if kind == of and not values.get(needed) and (needed,) not in reported:
            problems.append(((needed,), f"a {of} argument needs a non-empty list of {needed}"))
    if problems:
        return None, problems
    if kind == "string" and "pattern" in values:
        values["_regex"] = re.compile(values["pattern"])
    default = values.pop("default", None)
    if default is None and kind == "bool":
        default = False
    if "required" not in values:
        values["required"] = default is None
    spec = ArgumentSpec(**values)
    if default is not None:
        try:
            default = spec.check(default)
        except ArgumentError as exc:
            return None, [(("default",), f"the default {exc}")]
        spec = ArgumentSpec(**{**values, "default": default})
    return spec, []


def _opt_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ArgumentError("Input should be a valid string")
    return value


def _opt_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError("Input should be a valid boolean")
    return value


def _opt_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ArgumentError("Input should be a finite number")
    return value


def _opt_max_length(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MAX_LENGTH:
        raise ArgumentError(f"Input should be a whole number from 1 to {MAX_MAX_LENGTH}")
    return value


def _opt_pattern(value: Any) -> str:
    text = _opt_text(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ArgumentError(f"not a valid regular expression: {exc}") from None
    return text


def _opt_choices(value: Any) -> tuple[Choice, ...]:
    if not isinstance(value, list):
        raise ArgumentError("Input should be a list of values (or of {value, label})")
    choices: list[Choice] = []
    for item in value:
        if isinstance(item, dict) and set(item) <= {"value", "label"} and "value" in item:
            raw, label = item["value"], item.get("label")
        else:
            raw, label = item, None
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise ArgumentError(f"choice {raw!r} should be a string or a number")
        text = str(raw)
        if "\x00" in text or text in {c.value for c in choices}:
            raise ArgumentError(f"choice {text!r} is empty, repeated or holds a NUL")
        choices.append(Choice(text, str(label) if label is not None else text))
    return tuple(choices)


def _opt_roots(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ArgumentError("Input should be a list of directories")
    roots = []
    for text in value:
        if not os.path.isabs(os.path.expanduser(text)):
            raise ArgumentError(f"root {text!r} should be an absolute path")
        roots.append(real_root(text))
    return tuple(roots)


_FIELDS = (
    ("description", "description", _opt_text),
    ("label", "label", _opt_text),
    ("default", "default", lambda v: v),
    ("required", "required", _opt_bool),
    ("secret", "secret", _opt_bool),
    ("allow_option", "allow_option", _opt_bool),
    ("pattern", "pattern", _opt_pattern),
    ("max_length", "max_length", _opt_max_length),
    ("min", "minimum", _opt_number),
    ("max", "maximum", _opt_number),
    ("choices", "choices", _opt_choices),
    ("roots", "roots", _opt_roots),
    ("must_exist", "must_exist", _opt_bool),
)
