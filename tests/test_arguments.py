"""Typed arguments: declarations, value checks, and how values reach a command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sysmenu.argument_config import declare
from sysmenu.arguments import ArgumentError, ArgumentsInvalid, ArgumentSpec, check_values
from sysmenu.argv import ArgvTemplate, parse_template
from sysmenu.invocation import (
    MASK,
    environment,
    fingerprint,
    masked,
    positional,
    same_values,
)


def one(**decl: Any) -> ArgumentSpec:
    specs, problems = declare([decl])
    assert problems == []
    return specs[0]


def problems_of(*decls: Any) -> list[tuple[tuple[int | str, ...], str]]:
    _, problems = declare(list(decls))
    assert problems
    return problems


# -- declarations ---------------------------------------------------------------


def test_declares_the_issue_example() -> None:
    specs, problems = declare(
        [
            {"name": "unit", "type": "choice", "choices": ["nginx", "mosquitto", "octoprint"]},
            {"name": "delay", "type": "int", "min": 0, "max": 600, "default": 0},
        ]
    )
    assert problems == []
    unit, delay = specs
    assert unit.required and [c.value for c in unit.choices] == ["nginx", "mosquitto", "octoprint"]
    assert not delay.required and delay.default == 0 and delay.minimum == 0 and delay.maximum == 600


@pytest.mark.parametrize(
    ("decl", "where", "says"),
    [
        ({"name": "x", "type": "nope"}, ("type",), "should be one of"),
        ({"name": "1x", "type": "int"}, ("name",), "letters, digits"),
        ({"name": "x-y", "type": "int"}, ("name",), "letters, digits"),
        ({"name": "x", "type": "int", "pattern": "a"}, ("pattern",), "applies to type string"),
        ({"name": "x", "type": "int", "colour": 1}, ("colour",), "unknown key"),
        ({"name": "x", "type": "string", "pattern": "("}, ("pattern",), "not a valid regular expression"),
        ({"name": "x", "type": "string", "max_length": 10**6}, ("max_length",), "from 1 to"),
        (
            {"name": "x", "type": "int", "max": 5, "default": 9},
            ("default",),
            "the default should be at most 5",
        ),
        ({"name": "x", "type": "string", "pattern": "[a-z]+", "default": "A"}, ("default",), "pattern"),
        ({"name": "x", "type": "choice"}, ("choices",), "non-empty list"),
        ({"name": "x", "type": "choice", "choices": ["a", "a"]}, ("choices",), "repeated"),
        ({"name": "x", "type": "path"}, ("roots",), "non-empty list"),
        ({"name": "x", "type": "path", "roots": ["relative"]}, ("roots",), "absolute"),
        ({"name": "x", "type": "bool", "default": "yes"}, ("default",), "true or false"),
        ({"name": "x", "type": "int", "required": "maybe"}, ("required",), "boolean"),
    ],
)
def test_bad_declarations_say_where_and_why(decl: dict[str, Any], where: tuple[str, ...], says: str) -> None:
    [(loc, message)] = problems_of(decl)
    assert loc == (0, *where)
    assert says in message


def test_every_problem_is_reported_and_duplicates_are_one() -> None:
    problems = problems_of(
        {"name": "a", "type": "int"},
        {"name": "A", "type": "int"},
        "not a mapping",
        {"name": "b", "type": "int", "min": "x", "max": "y"},
    )
    assert [loc for loc, _ in problems] == [(1, "name"), (2,), (3, "min"), (3, "max")]


def test_not_a_list() -> None:
    assert declare({"name": "x"})[1] == [((), "Input should be a list of arguments")]


def test_bool_defaults_to_false_and_is_optional() -> None:
    flag = one(name="force", type="bool")
    assert flag.default is False and not flag.required


def test_choice_labels_and_numbers() -> None:
    spec = one(name="n", type="choice", choices=[{"value": "a", "label": "Alpha"}, 2])
    assert [(c.value, c.label) for c in spec.choices] == [("a", "Alpha"), ("2", "2")]
    assert spec.check("2") == "2"
    with pytest.raises(ArgumentError):
        spec.check(2)  # a JSON number is not the string choice


# -- values -------------------------------------------------------------------------


def test_string_pattern_is_anchored_whole() -> None:
    spec = one(name="s", type="string", pattern="[a-z]+")
    assert spec.check("abc") == "abc"
    for bad in ("abc;", "x\nabc", "abc\n", "", "ABC"):
        with pytest.raises(ArgumentError, match="pattern"):
            spec.check(bad)


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", 5, None, ["a"], "x" * 4097])
def test_string_refuses(bad: Any) -> None:
    with pytest.raises(ArgumentError):
        one(name="s", type="string").check(bad)


def test_numbers() -> None:
    whole = one(name="n", type="int", min=0, max=600)
    assert whole.check(5) == 5 and whole.check(5.0) == 5
    for bad in (True, 5.5, -1, 601, "5", float("nan")):
        with pytest.raises(ArgumentError):
            whole.check(bad)
    real = one(name="f", type="float", min=0.5)
    assert real.check(1) == 1.0
    for bad in (float("inf"), 0.4, "1.0"):
        with pytest.raises(ArgumentError):
            real.check(bad)


def test_text_forms_for_cli() -> None:
    assert one(name="n", type="int").from_text(" 7 ") == 7
    assert one(name="b", type="bool").from_text("yes") is True
    assert one(name="f", type="float").from_text("2.5") == 2.5
    with pytest.raises(ArgumentError, match="whole number"):
        one(name="n", type="int").from_text("7.5")
    with pytest.raises(ArgumentError, match="true or false"):
        one(name="b", type="bool").from_text("perhaps")


def test_check_values_reports_one_error_per_argument() -> None:
    specs, _ = declare(
        [
            {"name": "unit", "type": "choice", "choices": ["nginx"]},
            {"name": "delay", "type": "int", "max": 10, "default": 0},
            {"name": "note", "type": "string", "required": False},
        ]
    )
    assert check_values(specs, {"unit": "nginx"}) == {"unit": "nginx", "delay": 0}
    with pytest.raises(ArgumentsInvalid) as caught:
        check_values(specs, {"delay": 11, "extra": 1})
    assert caught.value.errors == {
        "extra": "is not an argument of this command",
        "unit": "is required",
        "delay": "should be at most 10",
    }
    with pytest.raises(ArgumentsInvalid, match="should be an object"):
        check_values(specs, ["nginx"])


# -- paths ----------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "sub" / "file").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "escape").symlink_to(tmp_path / "outside")
    (tmp_path / "root" / "inner").symlink_to(tmp_path / "root" / "sub")
    return tmp_path


def test_path_inside_root(tree: Path) -> None:
    spec = one(name="p", type="path", roots=[str(tree / "root")])
    assert spec.check("sub/file") == str(tree / "root" / "sub" / "file")
    assert spec.check(str(tree / "root" / "sub")) == str(tree / "root" / "sub")
    assert spec.check("inner/file") == str(tree / "root" / "sub" / "file")  # a symlink that stays inside


@pytest.mark.parametrize("escape", ["../outside", "sub/../../outside", "escape", "/etc", "missing"])
def test_path_escapes_are_refused(tree: Path, escape: str) -> None:
    spec = one(name="p", type="path", roots=[str(tree / "root")])
    with pytest.raises(ArgumentError):
        spec.check(escape)


def test_path_through_a_bind_mount_is_refused(tree: Path) -> None:
    target = tree / "root" / "mnt"
    target.mkdir()
    if os.system(f"mount --bind {tree / 'outside'} {target} 2>/dev/null") != 0:
        pytest.skip("bind mounts need root and a mount namespace that allows them")
    try:
        spec = one(name="p", type="path", roots=[str(tree / "root")])
        with pytest.raises(ArgumentError, match="mount point"):
            spec.check("mnt")
        assert spec.check("sub") == str(tree / "root" / "sub")
    finally:
        os.system(f"umount {target}")


# -- invocation ------------------------------------------------------------------------


def test_positional_and_environment_in_declared_order() -> None:
    specs, _ = declare(
        [
            {"name": "unit", "type": "string"},
            {"name": "delay", "type": "int", "required": False},
            {"name": "force", "type": "bool"},
            {"name": "ratio", "type": "float", "default": 0.5},
        ]
    )
    values = check_values(specs, {"unit": "a b"})
    assert positional(specs, values) == ["a b", "", "false", "0.5"]
    assert environment(specs, values) == {
        "SYSMENU_ARG_UNIT": "a b",
        "SYSMENU_ARG_FORCE": "false",
        "SYSMENU_ARG_RATIO": "0.5",
    }


def test_argv_template() -> None:
    specs, _ = declare(
        [{"name": "unit", "type": "string"}, {"name": "opt", "type": "string", "allow_option": True}]
    )
    template = ArgvTemplate(
        tuple(parse_template(e) for e in ["systemctl", "restart", "{unit}", "--x={unit}", "{opt}", "{{lit}}"])
    )
    assert template.names() == {"unit", "opt"}
    assert template.render(specs, {"unit": "a b; c", "opt": "-v"}) == [
        "systemctl",
        "restart",
        "a b; c",
        "--x=a b; c",
        "-v",
        "{lit}",
    ]
    with pytest.raises(ArgumentsInvalid, match="option"):
        template.render(specs, {"unit": "--now", "opt": ""})


@pytest.mark.parametrize("bad", ["{", "}", "{a b}", "{1x}", "x{}"])
def test_argv_template_refuses_lone_braces(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_template(bad)


def test_secrets_masked_and_fingerprints_match_only_same_values() -> None:
    specs, _ = declare([{"name": "token", "type": "string", "secret": True}, {"name": "n", "type": "int"}])
    values = {"token": "hunter2", "n": 1}
    assert masked(specs, values) == {"token": MASK, "n": 1}
    recorded = fingerprint(values)
    assert "hunter2" not in recorded
    assert same_values(values, recorded)
    assert not same_values({"token": "hunter3", "n": 1}, recorded)
    assert same_values({}, None) and not same_values(values, None)
    assert "default" not in one(name="s", type="string", secret=True, default="x").public()
