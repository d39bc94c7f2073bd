"""Reading configured command lines: steps, sudo and polkit needs."""

from __future__ import annotations

import pytest

from sysmenu.commandline import LOGIN1, MANAGE_UNITS, Sudo, analyse
from sysmenu.policy import name_problem, password_problem


def shape(line: str) -> list[tuple[str, tuple[str, ...], Sudo | None]]:
    return [(s.program, s.args, s.sudo) for s in analyse(line).steps]


def test_simple_and_compound_lines() -> None:
    assert shape("uptime") == [("uptime", (), None)]
    assert shape("echo a; df -h && FOO=1 nohup /bin/x y 2>/dev/null | cat") == [
        ("echo", ("a",), None),
        ("df", ("-h",), None),
        ("/bin/x", ("y",), None),
        ("cat", (), None),
    ]
    assert shape('for i in 1 2; do echo "$i"; sleep 1; done') == [
        ("echo", ("$i",), None),
        ("sleep", ("1",), None),
    ]
    assert shape("if test -f x; then rm x; fi") == [("test", ("-f", "x"), None), ("rm", ("x",), None)]
    assert analyse("echo 'unbalanced").unchecked == ["the command line has unbalanced quotes"]
    assert analyse("$HOME/bin/x").unchecked == ["'$HOME/bin/x' is only known when the command runs"]


def test_sudo_options() -> None:
    assert shape("sudo -n /usr/bin/systemctl restart octoprint") == [
        ("/usr/bin/systemctl", ("restart", "octoprint"), Sudo(non_interactive=True))
    ]
    assert shape("sudo -nu octoprint touch x") == [("touch", ("x",), Sudo("octoprint", None, True))]
    assert shape("sudo --user=pi -g adm -- id") == [("id", (), Sudo("pi", "adm"))]
    assert Sudo("pi", "adm").runas() == "(pi:adm)" and Sudo().runas() == "(root)"
    assert Sudo(group="adm").runas() == "(:adm)"
    assert analyse("sudo -s").steps[0].sudo == Sudo(shell=True)


@pytest.mark.parametrize(
    ("line", "actions"),
    [
        ("systemctl poweroff", [(LOGIN1 + "power-off", ())]),
        ("/usr/bin/systemctl --no-block reboot", [(LOGIN1 + "reboot", ())]),
        ("shutdown -r now", [(LOGIN1 + "reboot", ())]),
        ("shutdown -h now", [(LOGIN1 + "power-off", ())]),
        ("poweroff", [(LOGIN1 + "power-off", ())]),
        (
            "systemctl restart octoprint nginx.service",
            [
                (MANAGE_UNITS, (("unit", "octoprint.service"), ("verb", "restart"))),
                (MANAGE_UNITS, (("unit", "nginx.service"), ("verb", "restart"))),
            ],
        ),
        ("systemctl status octoprint", []),
        ("sudo systemctl reboot", []),  # root asks no polkit
    ],
)
def test_polkit_needs(line: str, actions: list[tuple[str, tuple[tuple[str, str], ...]]]) -> None:
    found = [(a.action_id, a.details) for s in analyse(line).steps if s.sudo is None for a in s.polkit()]
    assert found == actions


def test_name_and_password_rules() -> None:
    assert name_problem("ann.b_c-d@x") is None and name_problem("a" * 64) is None
    for bad in ("", "a b", "a/b", "-x", ".x", "a" * 65, "ä"):
        assert name_problem(bad) is not None, bad
    assert password_problem("ann", "12345678") is None
    assert password_problem("ann", "1234567") is not None
    assert password_problem("annabelle", "AnnaBelle") is not None
    assert password_problem("ann", "x" * 1025) is not None
