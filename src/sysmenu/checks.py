"""The checks config values pass: each takes a value as YAML gives it and returns the
checked value, or raises `Invalid` saying why it does not fit (the caller adds where)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Validation is a few plain functions rather than a schema library: the sections are
# small, and the server's memory and start-up time are worth more (pydantic alone
# was a third of the resident memory).


class Invalid(Exception):
    """A value that does not fit; the message says why (the caller adds where)."""


class Nested(Exception):
    """Problems inside a structured value (a list, a mapping), each with its place below the key."""

    def __init__(self, problems: list[tuple[tuple[int | str, ...], str]]) -> None:
        super().__init__(problems)
        self.problems = problems


Check = Callable[[Any], Any]  # a YAML value in, the checked value out; Invalid if it does not fit


def optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def string(min_length: int = 0) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("Input should be a valid string")
        if len(value.strip()) < min_length:
            raise Invalid(f"String should have at least {min_length} character")
        return value

    return check


_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise Invalid("Input should be a valid boolean")


def number(
    integer: bool = False, gt: float | None = None, ge: float | None = None, le: float | None = None
) -> Check:
    kind = "integer" if integer else "number"

    def check(value: Any) -> float | int:
        if isinstance(value, bool):
            raise Invalid(f"Input should be a valid {kind}")
        number: float | int
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip()) if integer else float(value.strip())
            except ValueError:
                raise Invalid(f"Input should be a valid {kind}") from None
        else:
            raise Invalid(f"Input should be a valid {kind}")
        if number != number or number in (float("inf"), float("-inf")):
            raise Invalid(f"Input should be a finite {kind}")
        if integer:
            if number != int(number):
                raise Invalid("Input should be a valid integer")
            number = int(number)
        else:
            number = float(number)
        if gt is not None and not number > gt:
            raise Invalid(f"Input should be greater than {gt:g}")
        if ge is not None and not number >= ge:
            raise Invalid(f"Input should be greater than or equal to {ge:g}")
        if le is not None and not number <= le:
            raise Invalid(f"Input should be less than or equal to {le:g}")
        return number

    return check


def choice(*choices: str) -> Check:
    def check(value: Any) -> str:
        if value not in choices:
            names = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
            raise Invalid(f"Input should be {names}")
        return str(value)

    return check


def path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise Invalid("Input should be a valid path")
    return Path(value)


def networks(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise Invalid("Input should be a valid list")
    for item in value:
        if not isinstance(item, str):
            raise Invalid(f"not an IP address or network: {item!r}")
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise Invalid(f"not an IP address or network: {item!r}") from None
    return list(value)


def confirm(value: Any) -> str | None:
    # OctoPrint configs write `confirm: false` to mean "no confirmation".
    if value is False or value is None:
        return None
    text: str = string()(value)
    return text


def checked(check: Callable[[Any], Any]) -> Check:
    """A checker from a function that raises ValueError (the access and retention rules)."""

    def wrapped(value: Any) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    return wrapped


def hosts(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise Invalid("Input should be a list of host names or addresses")
    return [item.strip() for item in value]


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def environment(value: Any) -> dict[str, str]:
    """Variables for commands: names as a shell accepts them, scalar values (as text)."""
    if not isinstance(value, dict):
        raise Invalid("Input should be a mapping of variable names to values")
    env: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise Invalid(f"not a valid variable name: {name!r}")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise Invalid(f"{name}: the value should be a string or a number")
        if "\0" in str(item):
            raise Invalid(f"{name}: the value holds a NUL character")
        env[name] = str(item)
    return env
