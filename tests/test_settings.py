"""Each setting is declared once (default, check, help) and the README's table, the
CLI's help and ``sysmenu settings`` all say what the declaration says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from sysmenu.checks import Invalid
from sysmenu.cli import main
from sysmenu.config import SETTINGS_KEYS, parse
from sysmenu.settings import DECLARATIONS, RESTART_KEYS, Settings, plain, section

README = Path(__file__).parent.parent / "README.md"
ROW = re.compile(r"^\| `sysmenu\.(\w+)` \| ([^|]+?) \| (.*) \|$")
CODE = re.compile(r"`([^`]*)`")


def readme_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in README.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, default, help_text = match.groups()
            code = CODE.fullmatch(default)
            rows.append((name, code.group(1) if code else default, help_text))
    return rows


def test_readme_table_says_what_the_declarations_say() -> None:
    assert readme_rows() == [(d.name, d.default, d.help) for d in DECLARATIONS]


def test_readme_names_the_settings_read_at_start_up_only() -> None:
    text = " ".join(README.read_text().split())
    start = text.index("Read at start-up only: ")
    sentence = text[start : text.index(". ", start)]
    assert re.findall(r"`sysmenu\.(\w+)`", sentence) == list(RESTART_KEYS)


def test_every_declared_setting_is_validated_and_nothing_else() -> None:
    assert list(SETTINGS_KEYS) == [d.name for d in DECLARATIONS]
    assert [d.name for d in DECLARATIONS] == list(Settings.__dataclass_fields__)


# a section (sysmenu.mqtt) is checked key by key, each key with its own check (test_mqtt*)
SCALARS = [d for d in DECLARATIONS if d.check is not section]


@pytest.mark.parametrize("declaration", SCALARS, ids=lambda d: d.name)
def test_each_check_refuses_a_wrong_type(declaration: object) -> None:
    from sysmenu.settings import Declaration

    assert isinstance(declaration, Declaration)
    with pytest.raises(Invalid):
        declaration.check({"a": ["nested"]})


def test_a_configured_value_goes_through_its_declared_check() -> None:
    settings = parse("sysmenu:\n  kill_grace: '2.5'\n  trusted_proxies: [10.0.0.0/8]\n").sysmenu
    assert (settings.kill_grace, settings.trusted_proxies) == (2.5, ["10.0.0.0/8"])
    assert Settings().trusted_proxies is not Settings().trusted_proxies  # a fresh list each time


def test_settings_command_lists_each_setting_with_value_default_and_help(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("sysmenu:\n  port: 5099\n")
    r = CliRunner().invoke(main, ["settings", "--config", str(config)])
    assert r.exit_code == 0, r.output
    for declaration in DECLARATIONS:
        assert f"{declaration.key} = " in r.output
        assert f"(default: {declaration.default})" in r.output
        assert plain(declaration.help) in r.output
    assert "sysmenu.port = 5099  (default: 5000)" in r.output
    assert "sysmenu.data_dir = ~/.local/share/sysmenu  (default: ~/.local/share/sysmenu)" in r.output


def test_serve_help_shows_the_declared_defaults() -> None:
    r = CliRunner().invoke(main, ["serve", "--help"])
    text = " ".join(r.output.split())  # click wraps the help
    assert "sysmenu.host, 127.0.0.1" in text and "sysmenu.port, 5000" in text
