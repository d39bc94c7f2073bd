"""What a user name and a password must be, checked wherever one is chosen.

User names: 1 to 64 letters, digits, ``.``, ``_``, ``-`` and ``@``, starting with a letter or
a digit (they appear in URLs, logs, the audit log and command lines: no spaces, no ``/``).
Passwords: at least `MIN_PASSWORD` characters, not the user name. No composition rules
(NIST SP 800-63B): length is what counts. Existing names and passwords are not re-checked.
"""

from __future__ import annotations

import re

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte password is a mistake or an attack
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user name, or None."""
    if _NAME.fullmatch(name):
        return None
    return (
        f"invalid user name {name!r}: use 1 to 64 letters, digits, '.', '_', '-' or '@', "
        "starting with a letter or a digit"
    )


def password_problem(name: str, password: str) -> str | None:
    """Why `password` is not good enough for user `name`, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password is too short: at least {MIN_PASSWORD} characters, please"
    if len(password) > MAX_PASSWORD:
        return f"the password is too long: at most {MAX_PASSWORD} characters"
    if password.casefold() == name.casefold():
        return "the password must not be the user name"
    return None
