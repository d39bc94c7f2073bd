"""Who may do what: groups, permissions, per-command allow/deny, key scopes.

Three permissions: ``ADMIN`` (users, keys, the audit log), ``SYSTEM`` (OctoPrint's:
list and run every command, read every run) and ``READ`` (list the commands and
read the run history, run nothing). Groups carry permissions; a user is in any
number of groups. Commands add ``allow`` (names of users or groups who may run it
without SYSTEM) and ``deny`` (who may not run it, even with SYSTEM). An API key
may be narrowed by a scope: ``read`` (list and history only) or a set of commands.

This module decides; it knows nothing of HTTP or the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

ADMIN, SYSTEM, READ = "ADMIN", "SYSTEM", "READ"
PERMISSIONS = (ADMIN, SYSTEM, READ)
ADMINS, USERS = "admins", "users"
BUILTIN_GROUPS: dict[str, frozenset[str]] = {
    ADMINS: frozenset({ADMIN, SYSTEM}),
    "operators": frozenset({SYSTEM}),
    "viewers": frozenset({READ}),
    USERS: frozenset(),  # no permission of its own: what `allow` grants; a new user's group
}
SOURCES = ("core", "custom", "plugin")  # where a command comes from: "source:action"
CORE_ACTIONS = ("shutdown", "reboot", "restart", "restart_safe")
FULL_SCOPE, READ_SCOPE = "full", "read"
SCOPES = (FULL_SCOPE, READ_SCOPE)  # as `sysmenu key create --scope` takes them
ONLY_PREFIX = "only:"


class Spec(Protocol):
    """What the rules need of a command (a catalogue `CommandSpec`)."""

    @property
    def source(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def is_divider(self) -> bool: ...


S = TypeVar("S", bound=Spec)


@dataclass(frozen=True, slots=True)
class Rule:
    """The ``allow`` and ``deny`` of one command: names of users or groups."""

    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()


# -- checking what the config says (errors as ValueError; config adds where) ----


def check_names(value: Any) -> tuple[str, ...]:
    """An ``allow``/``deny`` value: a list of user or group names (one name alone is a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("Input should be a list of user or group names")
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or item != item.strip():
            raise ValueError(f"not a user or group name: {item!r}")
        names.append(item)
    return tuple(names)


def check_permissions(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"Input should be a list of permissions ({', '.join(PERMISSIONS)})")
    for item in value:
        if item not in PERMISSIONS:
            raise ValueError(f"unknown permission {item!r} (known: {', '.join(PERMISSIONS)})")
    return tuple(dict.fromkeys(value))


def check_groups(value: Any) -> dict[str, tuple[str, ...]]:
    """``sysmenu.groups``: group name -> its permissions (a list, possibly empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("Input should be a mapping of group name to a list of permissions")
    groups = {}
    for name, perms in value.items():
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(f"not a group name: {name!r}")
        if name in BUILTIN_GROUPS:
            raise ValueError(f"{name!r} is a built-in group and cannot be redefined")
        try:
            groups[name] = check_permissions(perms)
        except ValueError as exc:
            raise ValueError(f"group {name!r}: {exc}") from None
    return groups


def check_core_access(value: Any) -> dict[str, Rule]:
    """``sysmenu.core_access``: core action -> ``{allow: [...], deny: [...]}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("Input should be a mapping of core command to {allow, deny}")
    rules = {}
    for action, entry in value.items():
        if action not in CORE_ACTIONS:
            raise ValueError(f"unknown core command {action!r} (known: {', '.join(CORE_ACTIONS)})")
        if not isinstance(entry, dict) or set(entry) - {"allow", "deny"}:
            raise ValueError(f"{action}: Input should be a mapping with allow and/or deny")
        try:
            rules[action] = Rule(
                frozenset(check_names(entry.get("allow", []))), frozenset(check_names(entry.get("deny", [])))
            )
        except ValueError as exc:
            raise ValueError(f"{action}: {exc}") from None
    return rules


def unknown_names(rules: Mapping[tuple[str, str], Rule], known: Iterable[str]) -> list[tuple[str, str, str]]:
    """(source, action, name) of every rule name that is no known user or group."""
    known = set(known)
    found = []
    for (source, action), rule in rules.items():
        for name in sorted(rule.allow | rule.deny):
            if name not in known:
                found.append((source, action, name))
    return found


# -- key scopes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """What a key may do of what its user may: everything (None), read only, or some commands."""

    read_only: bool = False
    only: frozenset[str] | None = None  # "source:action" names

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        """The scope stored as `text` (None: a full key)."""
        if not text:
            return FULL
        if text == READ_SCOPE:
            return cls(read_only=True)
        if text.startswith(ONLY_PREFIX):
            return cls(only=frozenset(n for n in text[len(ONLY_PREFIX) :].split(",") if n))
        raise ValueError(f"unknown key scope {text!r}")

    @staticmethod
    def text(read: bool, only: Sequence[str] | None) -> str | None:
        """The stored form of a scope given on the command line; ValueError when it is not one."""
        if read and only:
            raise ValueError("a key is either read-only or limited to some commands, not both")
        if read:
            return READ_SCOPE
        if only is None:
            return None
        names = [n.strip() for n in only if n.strip()]
        if not names:
            raise ValueError("--only needs at least one command (source:action)")
        for name in names:
            source, _, action = name.partition(":")
            if source not in SOURCES or not action:
                raise ValueError(f"not a command: {name!r} (write source:action, e.g. custom:backup)")
        return ONLY_PREFIX + ",".join(dict.fromkeys(names))

    def describe(self) -> str:
        if self.read_only:
            return READ_SCOPE
        if self.only is not None:
            return "only " + ",".join(sorted(self.only))
        return FULL_SCOPE


FULL = Scope()


# -- deciding --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """What one caller (a user, through a key's scope) may do."""

    user: str
    groups: tuple[str, ...]
    permissions: frozenset[str]
    scope: Scope
    policy: Policy = field(repr=False)

    @property
    def names(self) -> frozenset[str]:
        return frozenset((self.user, *self.groups))

    def can(self, permission: str) -> bool:
        """Whether the caller holds `permission` (a scoped key holds no ADMIN; a read key
        holds READ instead of SYSTEM; a key for some commands holds neither)."""
        if permission not in self.permissions and not (permission == READ and SYSTEM in self.permissions):
            return False
        if self.scope.only is not None:
            return False
        if self.scope.read_only:
            return permission == READ
        return True

    @property
    def reads_all(self) -> bool:
        """Whether every run and the whole menu may be read."""
        return self.can(READ)

    @property
    def may_audit(self) -> bool:
        return self.can(ADMIN)

    def denied(self, source: str, action: str) -> bool:
        rule = self.policy.rules.get((source, action))
        return rule is not None and not rule.deny.isdisjoint(self.names)

    def _user_may_run(self, source: str, action: str) -> bool:
        rule = self.policy.rules.get((source, action))
        if rule is not None and not rule.deny.isdisjoint(self.names):
            return False
        if SYSTEM in self.permissions:
            return True
        return rule is not None and not rule.allow.isdisjoint(self.names)

    def may_run(self, source: str, action: str) -> bool:
        if self.scope.read_only:
            return False
        if self.scope.only is not None and f"{source}:{action}" not in self.scope.only:
            return False
        return self._user_may_run(source, action)

    def may_see(self, source: str, action: str) -> bool:
        """Whether the command is in the caller's menu: runnable, or readable and not denied
        (a read-only key sees what its user could run)."""
        if self.may_run(source, action):
            return True
        if self.scope.read_only and self._user_may_run(source, action):
            return True
        return self.reads_all and not self.denied(source, action)

    def may_read_run(self, source: str, action: str) -> bool:
        return self.reads_all or self.may_see(source, action)

    def may_kill(self, source: str, action: str) -> bool:
        if self.scope.read_only:
            return False
        if SYSTEM in self.permissions and self.scope.only is None:
            return True
        return self.may_run(source, action)

    @property
    def runs_everything(self) -> bool:
        """SYSTEM without a scope and without a deny naming the caller: OctoPrint's SYSTEM."""
        return (
            SYSTEM in self.permissions
            and self.scope == FULL
            and all(rule.deny.isdisjoint(self.names) for rule in self.policy.rules.values())
        )

    def visible(self, specs: Iterable[S]) -> list[S]:
        """The specs the caller may see, in order; dividers only between two kept commands."""
        kept: list[S] = []
        pending: S | None = None
        for spec in specs:
            if spec.is_divider:
                if kept and not kept[-1].is_divider:
                    pending = spec
                continue
            if self.may_see(spec.source, spec.action):
                if pending is not None:
                    kept.append(pending)
                    pending = None
                kept.append(spec)
        return kept

    def sees_anything(self, specs: Iterable[Spec]) -> bool:
        return self.reads_all or any(not s.is_divider and self.may_see(s.source, s.action) for s in specs)

    def may_run_any(self, specs: Iterable[Spec]) -> bool:
        return any(not s.is_divider and self.may_run(s.source, s.action) for s in specs)

    def runnable(self, specs: Iterable[Spec]) -> list[str]:
        """``source:action`` of every command in `specs` the caller may run."""
        return [
            f"{s.source}:{s.action}" for s in specs if not s.is_divider and self.may_run(s.source, s.action)
        ]


class Policy:
    """The groups and per-command rules in force (built once per config load)."""

    def __init__(
        self,
        groups: Mapping[str, Iterable[str]] | None = None,
        rules: Mapping[tuple[str, str], Rule] | None = None,
    ) -> None:
        self.groups: dict[str, frozenset[str]] = dict(BUILTIN_GROUPS)
        for name, perms in (groups or {}).items():
            self.groups.setdefault(name, frozenset(perms))
        self.rules: dict[tuple[str, str], Rule] = {
            k: r for k, r in (rules or {}).items() if r.allow or r.deny
        }

    def permissions(self, groups: Iterable[str]) -> frozenset[str]:
        """The permissions built-in and config groups give a member of `groups`."""
        perms: set[str] = set()
        for group in groups:
            perms |= self.groups.get(group, frozenset())
        return frozenset(perms)

    def grant(
        self, user: str, groups: Sequence[str], scope: Scope = FULL, stored: Iterable[str] = ()
    ) -> Grant:
        """What `user`, in `groups`, may do through a key of `scope`; `stored`: the
        permissions the database gives its groups (groups made with the CLI)."""
        return Grant(user, tuple(groups), self.permissions(groups) | frozenset(stored), scope, self)
