"""Plain records shared by the store, the runner and the views: who, users, keys,
sessions, runs. No behaviour beyond what a record says of itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TypedDict

from .access import BUILTIN_GROUPS, PERMISSIONS

__all__ = ["GROUPS", "PERMISSIONS", "RUN_STATES", "ApiKey", "Leftover", "RunRecord", "Session", "User", "Who"]

# The built-in groups, as the database holds them (declared in access.py).
GROUPS: dict[str, tuple[str, ...]] = {name: tuple(sorted(p)) for name, p in BUILTIN_GROUPS.items()}
RUN_STATES = ("running", "ok", "failed", "timeout", "killed", "interrupted")


@dataclass(frozen=True, slots=True)
class Who:
    """Who started a run (or did anything audited): user, how they authenticated, from where."""

    user: str | None = None
    auth: str | None = None
    client: str | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    groups: tuple[str, ...]
    permissions: frozenset[str]
    has_password: bool = False

    def can(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    user: str
    name: str
    prefix: str
    created: float
    revoked: float | None
    scope: str | None = None  # None: all its user may do; "read"; "only:source:action,..."


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: User
    csrf: str
    created: float
    password_at: float  # when the password was last checked (login)


class Leftover(TypedDict):
    """A process a run left running at its normal end (killed, with ``leftovers: kill``)."""

    pid: int
    command: str
    killed: bool


# The fields of a run that clients see, in the order the API shows them.
_PUBLIC_RUN_FIELDS = (
    "id",
    "source",
    "action",
    "name",
    "user",
    "auth",
    "client",
    "started",
    "ended",
    "duration",
    "state",
    "returncode",
    "signal",
    "stdout",
    "stderr",
    "stdout_dropped",
    "stderr_dropped",
    "arguments",
    "leftovers",
)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as recorded. `stdout`/`stderr` are None when the output was not loaded
    (listings); `pid`, `pid_start` and `idempotency_key` are private to the server."""

    id: int
    source: str
    action: str
    name: str
    user: str | None
    auth: str | None
    client: str | None
    started: float
    ended: float | None
    duration: float | None
    state: str
    returncode: int | None
    signal: int | None
    stdout_dropped: int = 0
    stderr_dropped: int = 0
    stdout: str | None = None
    stderr: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    idempotency_key: str | None = None
    arguments: Mapping[str, object] | None = None  # the values given, secrets masked
    arguments_digest: str | None = None  # salted digest of all values (secrets too)
    # background processes left running (or killed) at a normal end; None when not loaded (listings)
    leftovers: list[Leftover] | None = None

    def public(self) -> dict[str, object]:
        """What the API shows of the run: no private columns, output only if loaded."""
        data = asdict(self)
        return {
            name: data[name]
            for name in _PUBLIC_RUN_FIELDS
            if not (name in ("stdout", "stderr", "arguments", "leftovers") and data[name] is None)
        }
