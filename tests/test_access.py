"""Access rules: groups, permissions, per-command allow/deny, key scopes (no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sysmenu.access import (
    ADMIN,
    FULL,
    READ,
    SYSTEM,
    Policy,
    Rule,
    Scope,
    check_core_access,
    check_groups,
    check_names,
    unknown_names,
)


@dataclass(frozen=True)
class S:
    source: str
    action: str

    @property
    def is_divider(self) -> bool:
        return self.action == "divider"


MENU = [
    S("core", "shutdown"),
    S("core", "reboot"),
    S("custom", "media"),
    S("custom", "divider"),
    S("custom", "backup"),
]
RULES = {
    ("core", "shutdown"): Rule(deny=frozenset({"kiosk"})),
    ("custom", "media"): Rule(allow=frozenset({"family"})),
    ("custom", "backup"): Rule(allow=frozenset({"alice"}), deny=frozenset({"nightshift"})),
}
POLICY = Policy({"family": [], "monitoring": [READ]}, RULES)
COMMANDS = [(s.source, s.action) for s in MENU if not s.is_divider]


def runnable(groups: list[str], user: str = "u", scope: Scope = FULL) -> set[tuple[str, str]]:
    grant = POLICY.grant(user, groups, scope)
    return {c for c in COMMANDS if grant.may_run(*c)}


def test_builtin_groups() -> None:
    assert POLICY.permissions(["admins"]) == {ADMIN, SYSTEM}
    assert POLICY.permissions(["operators"]) == {SYSTEM}
    assert POLICY.permissions(["viewers"]) == {READ}
    assert POLICY.permissions(["users"]) == frozenset()
    assert POLICY.permissions(["viewers", "operators"]) == {READ, SYSTEM}
    assert POLICY.permissions(["monitoring"]) == {READ}


def test_stored_groups_add_their_permissions() -> None:
    assert POLICY.grant("u", ["night"], stored=["SYSTEM"]).permissions == {SYSTEM}
    assert POLICY.grant("u", ["viewers"]).permissions == {READ}


@pytest.mark.parametrize(
    ("groups", "user", "expected"),
    [
        (["admins"], "root", set(COMMANDS)),
        (["operators"], "op", set(COMMANDS)),
        (["operators", "kiosk"], "op", set(COMMANDS) - {("core", "shutdown")}),
        (["operators"], "kiosk", set(COMMANDS) - {("core", "shutdown")}),  # deny by user name
        (["viewers"], "v", set()),
        (["users", "family"], "kid", {("custom", "media")}),
        (["users"], "alice", {("custom", "backup")}),  # allow by user name
        (["users"], "nobody", set()),
        (["operators", "nightshift"], "op", set(COMMANDS) - {("custom", "backup")}),
    ],
)
def test_who_may_run_what(groups: list[str], user: str, expected: set[tuple[str, str]]) -> None:
    assert runnable(groups, user) == expected


def test_deny_wins_over_allow() -> None:
    policy = Policy({}, {("custom", "x"): Rule(allow=frozenset({"bob"}), deny=frozenset({"bob"}))})
    assert not policy.grant("bob", ["users"]).may_run("custom", "x")


def test_menu_shows_what_one_may_do() -> None:
    def seen(groups: list[str], user: str = "u", scope: Scope = FULL) -> list[str]:
        return [s.action for s in POLICY.grant(user, groups, scope).visible(MENU)]

    assert seen(["operators"]) == ["shutdown", "reboot", "media", "divider", "backup"]
    assert seen(["operators"], "kiosk") == ["reboot", "media", "divider", "backup"]
    assert seen(["viewers"]) == ["shutdown", "reboot", "media", "divider", "backup"]
    assert seen(["viewers", "kiosk"]) == ["reboot", "media", "divider", "backup"]
    # no divider at an edge: the family sees one command
    assert seen(["family"]) == ["media"]
    assert seen(["users"]) == []
    assert not POLICY.grant("u", ["users"]).sees_anything(MENU)
    assert POLICY.grant("u", ["family"]).sees_anything(MENU)


def test_runs_everything_is_octoprints_system() -> None:
    assert POLICY.grant("op", ["operators"]).runs_everything
    assert not POLICY.grant("kiosk", ["operators"]).runs_everything
    assert not POLICY.grant("op", ["operators"], Scope(read_only=True)).runs_everything
    assert not POLICY.grant("v", ["viewers"]).runs_everything


def test_read_scope_runs_nothing_and_reads() -> None:
    scope = Scope.parse("read")
    assert runnable(["admins"], scope=scope) == set()
    grant = POLICY.grant("root", ["admins"], scope)
    assert grant.can(READ) and not grant.can(SYSTEM) and not grant.can(ADMIN)
    assert not grant.may_audit
    assert grant.may_see("core", "shutdown") and grant.may_read_run("custom", "backup")
    assert not grant.may_kill("custom", "media")
    family = POLICY.grant("kid", ["family"], scope)
    assert [s.action for s in family.visible(MENU)] == ["media"]
    assert not family.reads_all


def test_only_scope_runs_just_those() -> None:
    scope = Scope.parse(Scope.text(False, ["custom:backup", "custom:media"]))
    assert runnable(["admins"], scope=scope) == {("custom", "backup"), ("custom", "media")}
    grant = POLICY.grant("root", ["admins"], scope)
    assert not grant.can(SYSTEM) and not grant.can(READ) and not grant.may_audit
    assert not grant.may_read_run("core", "shutdown") and grant.may_read_run("custom", "backup")
    assert grant.may_kill("custom", "backup") and not grant.may_kill("core", "reboot")
    # a scope never adds to what the user may do
    assert runnable(["users"], scope=scope) == set()
    assert runnable(["family"], scope=scope) == {("custom", "media")}


def test_scope_text_round_trip_and_errors() -> None:
    assert Scope.text(False, None) is None
    assert Scope.parse(None) is FULL
    assert Scope.text(True, None) == "read"
    assert Scope.parse(Scope.text(False, ["custom:a", "custom:a", "core:shutdown"])).describe() == (
        "only core:shutdown,custom:a"
    )
    for read, only in ((True, ["custom:a"]), (False, []), (False, ["backup"]), (False, ["nowhere:x"])):
        with pytest.raises(ValueError):
            Scope.text(read, only)
    with pytest.raises(ValueError):
        Scope.parse("everything")


def test_checkers() -> None:
    assert check_names("family") == ("family",)
    assert check_names(["a", "b"]) == ("a", "b")
    for bad in (3, [""], [" a"], [None], {"a": 1}):
        with pytest.raises(ValueError):
            check_names(bad)
    assert check_groups({"family": None, "mon": ["READ"], "ops": "SYSTEM"}) == {
        "family": (),
        "mon": ("READ",),
        "ops": ("SYSTEM",),
    }
    for bad in ({"admins": []}, {"x": ["ROOT"]}, ["x"], {"": []}):
        with pytest.raises(ValueError):
            check_groups(bad)
    assert check_core_access({"shutdown": {"deny": ["kiosk"]}}) == {
        "shutdown": Rule(deny=frozenset({"kiosk"}))
    }
    for bad in (
        {"halt": {"deny": ["x"]}},
        {"shutdown": ["x"]},
        {"shutdown": {"allow": [1]}},
        {"reboot": {"who": []}},
    ):
        with pytest.raises(ValueError):
            check_core_access(bad)


def test_unknown_names() -> None:
    assert unknown_names(RULES, ["kiosk", "family", "alice", "nightshift"]) == []
    assert unknown_names(RULES, ["family", "alice"]) == [
        ("core", "shutdown", "kiosk"),
        ("custom", "backup", "nightshift"),
    ]
