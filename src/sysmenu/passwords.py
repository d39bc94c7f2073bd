"""Password hashing with argon2id (verifies OctoPrint's own argon2 hashes too).

Parameters, for a 1 GB Raspberry Pi: argon2id with 19 MiB of memory, 2 passes and
one lane (OWASP's first recommended set, RFC 9106's resistance at a memory cost a
small host can afford). argon2-cffi's default (64 MiB, 3 passes, 4 lanes) costs
64 MiB per check; with `logins.PasswordChecks` allowing `CHECK_SLOTS` checks at
once, sysmenu's password checks need at most 2 x 19 MiB beyond its normal
footprint, and a check takes about 0.1 s on a Pi 3 (a few ms on a desktop).
Hashes made with other parameters (older sysmenu, OctoPrint) still verify with
their own (and cost their own memory; a password set again gets these).
"""

from __future__ import annotations

from functools import cache
from typing import Any

TIME_COST = 2
MEMORY_COST = 19 * 1024  # KiB
PARALLELISM = 1


@cache
def _hasher() -> Any:
    from argon2 import PasswordHasher  # imported on first use: start-up does not need it

    return PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST, parallelism=PARALLELISM)


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; False for a missing or foreign hash."""
    if not stored:
        return False
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False
