"""Password hashing with argon2id (verifies OctoPrint's own argon2 hashes too).

Production cost, for a 1 GB Raspberry Pi: argon2id with 19 MiB of memory, 2 passes
and one lane (OWASP's first recommended set, RFC 9106's resistance at a memory cost
a small host can afford). argon2-cffi's default (64 MiB, 3 passes, 4 lanes) costs
64 MiB per check; with `logins.PasswordChecks` allowing `CHECK_SLOTS` checks at
once, sysmenu's password checks need at most 2 x 19 MiB beyond its normal
footprint, and a check takes about 0.1 s on a Pi 3 (a few ms on a desktop).

A hash carries its own parameters, so checking a password costs what hashing it
did: hashes made with other parameters (older sysmenu, OctoPrint) still verify with
their own (and cost their own memory; a password set again gets these). `COST` is
`PRODUCTION`, pinned by tests/test_passwords.py; the test suite sets a cheap one for
its fixtures (hashes stay real argon2id).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@dataclass(frozen=True)
class Cost:
    time_cost: int  # passes
    memory_cost: int  # KiB
    parallelism: int  # lanes


PRODUCTION = Cost(time_cost=2, memory_cost=19 * 1024, parallelism=1)
COST = PRODUCTION


@cache
def hasher(cost: Cost) -> PasswordHasher:
    from argon2 import PasswordHasher, Type  # imported on first use: start-up does not need it

    return PasswordHasher(
        time_cost=cost.time_cost,
        memory_cost=cost.memory_cost,
        parallelism=cost.parallelism,
        type=Type.ID,
    )


def hash_password(password: str) -> str:
    return hasher(COST).hash(password)


@cache
def _decoy(cost: Cost) -> str:
    return hasher(cost).hash("not a password of anyone")


def decoy_hash() -> str:
    """A hash no password matches, at the current cost: an unknown user's login costs
    as much as a known one's, so names cannot be probed by timing."""
    return _decoy(COST)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; False for a missing or foreign hash."""
    if not stored:
        return False
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hasher(COST).verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
