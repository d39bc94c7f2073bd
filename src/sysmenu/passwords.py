"""Password hashing with argon2id (verifies OctoPrint's own argon2 hashes too).

A hash carries its own parameters, so checking a password costs what hashing it
did. `COST` is the production cost, pinned here (a test checks it); the test
suite sets a cheap one for its fixtures (hashes stay real argon2id).
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


# argon2-cffi's default profile (RFC 9106's low-memory recommendation): 64 MiB, 3 passes.
PRODUCTION = Cost(time_cost=3, memory_cost=65536, parallelism=4)
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
