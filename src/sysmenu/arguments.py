"""Typed command arguments: declared in the config, checked per request, never shell code.

An action entry may declare ``arguments``. A request's values are checked against
the declaration and reach the command only as data: positional parameters of
``/bin/sh -c COMMAND NAME VALUE...`` (``"$1"``, ``"$@"``), environment variables
``SYSMENU_ARG_<NAME>``, or whole elements of an ``argv`` list. They are never
spliced into the command text, so no value is ever read by a shell parser.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest

TYPES = ("string", "int", "float", "bool", "choice", "path")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DEFAULT_MAX_LENGTH = 4096
# One argv element or environment string may hold 128 KiB on Linux (MAX_ARG_STRLEN);
# 16384 characters are at most 64 KiB in UTF-8, with room for the variable's name.
MAX_MAX_LENGTH = 16384

Value = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class ArgumentSpec:
    """One declared argument. `default` is None when there is none."""

    name: str
    type: str
    description: str | None = None
    label: str | None = None
    default: Value | None = None
    required: bool = True
    secret: bool = False
    allow_option: bool = False
    pattern: str | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Choice, ...] = ()
    roots: tuple[str, ...] = ()
    must_exist: bool = True
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def env_name(self) -> str:
        return "SYSMENU_ARG_" + self.name.upper()

    def check(self, value: Any) -> Value:
        """The validated value of `value` (from JSON); `ArgumentError` says why not."""
        checker = _CHECKERS[self.type]
        return checker(self, value)

    def from_text(self, text: str) -> Value:
        """A value typed as text (CLI, MQTT): converted by type, then checked."""
        if self.type in ("int", "float"):
            try:
                number = int(text.strip(), 10) if self.type == "int" else float(text.strip())
            except ValueError:
                raise ArgumentError(
                    "should be a whole number" if self.type == "int" else "should be a number"
                ) from None
            return self.check(number)
        if self.type == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ArgumentError("should be true or false")
        return self.check(text)

    def public(self) -> dict[str, Any]:
        """What clients are shown: type, limits, default, description (no secret default)."""
        shown: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.label:
            shown["label"] = self.label
        if self.description:
            shown["description"] = self.description
        shown["required"] = self.required
        if self.default is not None and not self.secret:
            shown["default"] = self.default
        if self.secret:
            shown["secret"] = True
        if self.type == "string":
            shown["max_length"] = self.max_length
            if self.pattern is not None:
                shown["pattern"] = self.pattern
        if self.type in ("int", "float"):
            if self.minimum is not None:
                shown["min"] = self.minimum
            if self.maximum is not None:
                shown["max"] = self.maximum
        if self.type == "choice":
            shown["choices"] = [{"value": c.value, "label": c.label} for c in self.choices]
        if self.type == "path":
            shown["roots"] = list(self.roots)
        return shown

    def json_schema(self) -> dict[str, Any]:
        """This argument's value as JSON Schema (OpenAPI 3.0 dialect)."""
        schema: dict[str, Any]
        if self.type == "string":
            schema = {"type": "string", "maxLength": self.max_length, "pattern": "^[^\\x00]*$"}
            if self.pattern is not None:  # both must hold: no NUL, and the whole value matches
                schema["allOf"] = [{"pattern": f"^(?:{self.pattern})$"}]
        elif self.type in ("int", "float"):
            schema = {"type": "integer" if self.type == "int" else "number"}
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        elif self.type == "bool":
            schema = {"type": "boolean"}
        elif self.type == "choice":
            schema = {"type": "string", "enum": [c.value for c in self.choices]}
        else:
            schema = {
                "type": "string",
                "minLength": 1,
                "maxLength": self.max_length,
                "pattern": "^[^\\x00]*$",
            }
        if self.description:
            schema["description"] = self.description
        return schema


class ArgumentError(ValueError):
    """A value that does not fit its argument; the message says why."""


# -- checking values ---------------------------------------------------------------


def _text(spec: ArgumentSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ArgumentError("should be a string")
    if "\x00" in value:
        raise ArgumentError("may not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ArgumentError("is not valid Unicode text") from None
    if len(value) > spec.max_length:
        raise ArgumentError(f"is longer than {spec.max_length} characters")
    return value


def _check_string(spec: ArgumentSpec, value: Any) -> str:
    text = _text(spec, value)
    if spec._regex is not None and spec._regex.fullmatch(text) is None:
        raise ArgumentError(f"does not match the pattern {spec.pattern}")
    return text


def _check_number(spec: ArgumentSpec, value: Any) -> int | float:
    integer = spec.type == "int"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError("should be a whole number" if integer else "should be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ArgumentError("should be a finite number")
    number: int | float
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ArgumentError("should be a whole number")
        number = int(value)
    else:
        number = float(value)
    if spec.minimum is not None and number < spec.minimum:
        raise ArgumentError(f"should be at least {spec.minimum:g}")
    if spec.maximum is not None and number > spec.maximum:
        raise ArgumentError(f"should be at most {spec.maximum:g}")
    return number


def _check_bool(spec: ArgumentSpec, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ArgumentError("should be true or false")
    return value


def _check_choice(spec: ArgumentSpec, value: Any) -> str:
    if isinstance(value, str):
        for choice in spec.choices:
            if choice.value == value:
                return value
    allowed = ", ".join(c.value for c in spec.choices)
    raise ArgumentError(f"should be one of: {allowed}")


def _mount_points() -> list[str]:
    """Mount points of this process's mount namespace (field 5 of mountinfo)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        parts = line.split()
        if len(parts) > 4:
            # octal escapes (\040 for a space) as the kernel writes them
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[4]))
    return points


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _check_path(spec: ArgumentSpec, value: Any) -> str:
    text = _text(spec, value)
    if not text:
        raise ArgumentError("should be a path")
    base = spec.roots[0] if spec.roots else "/"
    joined = os.path.join(base, text)  # an absolute value stays as it is
    try:
        resolved = os.path.realpath(joined, strict=spec.must_exist)
    except OSError:
        raise ArgumentError("does not exist") from None
    root = next((r for r in spec.roots if _inside(resolved, r)), None)
    if root is None:
        raise ArgumentError(f"is not inside {' or '.join(spec.roots)}")
    # A mount below the root (a bind mount, say) can show anything under a name inside it.
    for point in _mount_points():
        if point != root and _inside(point, root) and _inside(resolved, point):
            raise ArgumentError(f"crosses the mount point {point}")
    return resolved


_CHECKERS = {
    "string": _check_string,
    "int": _check_number,
    "float": _check_number,
    "bool": _check_bool,
    "choice": _check_choice,
    "path": _check_path,
}


def check_values(specs: Sequence[ArgumentSpec], given: Any) -> dict[str, Value]:
    """The validated values of a request's ``arguments`` object, defaults filled in.

    Raises `ArgumentsInvalid` with one message per argument that does not fit."""
    if not isinstance(given, dict):
        raise ArgumentsInvalid({"arguments": "should be an object of argument names to values"})
    errors: dict[str, str] = {}
    known = {spec.name for spec in specs}
    for name in given:
        if name not in known:
            errors[str(name)] = "is not an argument of this command"
    values: dict[str, Value] = {}
    for spec in specs:
        if spec.name not in given:  # null is a value of no type: refused below
            if spec.default is not None:
                values[spec.name] = spec.default
            elif spec.required:
                errors[spec.name] = "is required"
            continue
        try:
            values[spec.name] = spec.check(given[spec.name])
        except ArgumentError as exc:
            errors[spec.name] = str(exc)
    if errors:
        raise ArgumentsInvalid(errors)
    return values


class ArgumentsInvalid(BadRequest):
    """Values that do not fit, one message per argument name (a 400 whose body also has
    ``errors``: argument name -> message)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        self.details = {"errors": self.errors}
        summary = "; ".join(f"{name} {message}" for name, message in self.errors.items())
        super().__init__(f"Invalid arguments: {summary}")


def as_text(value: Value) -> str:
    """How a value reaches the command: bools as true/false, numbers in decimal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def values_from_text(specs: Sequence[ArgumentSpec], pairs: Sequence[str]) -> dict[str, Value]:
    """Checked values from ``NAME=VALUE`` texts (the CLI's ``--arg``), defaults filled in;
    `ArgumentsInvalid` with one message per argument that does not fit."""
    by_name = {spec.name: spec for spec in specs}
    given: dict[str, Value] = {}
    errors: dict[str, str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            errors[pair] = "should be written NAME=VALUE"
        elif name not in by_name:
            errors[name] = "is not an argument of this command"
        else:
            try:
                given[name] = by_name[name].from_text(text)
            except ArgumentError as exc:
                errors[name] = str(exc)
    if errors:
        raise ArgumentsInvalid(errors)
    return check_values(specs, given)


def describe(spec: ArgumentSpec) -> str:
    """One line about an argument, for people: type, limits, default."""
    limits = {
        "string": f"pattern {spec.pattern}" if spec.pattern else "",
        "choice": "|".join(c.value for c in spec.choices),
        "path": "in " + ", ".join(spec.roots),
    }.get(spec.type, "")
    if spec.type in ("int", "float") and (spec.minimum is not None or spec.maximum is not None):
        low = "" if spec.minimum is None else f"{spec.minimum:g}"
        high = "" if spec.maximum is None else f"{spec.maximum:g}"
        limits = f"{low}..{high}"
    kind = f"{spec.type}: {limits}" if limits else spec.type
    if spec.required:
        need = "required"
    elif spec.default is not None and not spec.secret:
        need = f"default {as_text(spec.default)}"
    else:
        need = "optional"
    text = f"{spec.name}=<{kind}> ({need}{', secret' if spec.secret else ''})"
    return f"{text}  {spec.description}" if spec.description else text
