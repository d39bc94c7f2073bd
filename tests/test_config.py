"""Config: OctoPrint's format, sysmenu's section, errors that name key, line and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysmenu.catalogue import Catalogue
from sysmenu.config import DEMO_CONFIG, load, parse
from sysmenu.errors import ConfigError

OCTOPRINT_FILE = """\
accessControl:
  salt: abcdef
api:
  key: 0123456789ABCDEF
appearance:
  name: Printer
  color: blue
plugins:
  softwareupdate:
    checks: {}
serial:
  port: /dev/ttyUSB0
  baudrate: 115200
server:
  firstRun: false
  host: 0.0.0.0
  onlineCheck:
    enabled: false
  commands:
    systemShutdownCommand: sudo shutdown -h now
    systemRestartCommand: sudo shutdown -r now
    serverRestartCommand: sudo service octoprint restart
system:
  actions:
  - action: streamon
    command: sudo systemctl start webcamd
    confirm: false
    name: Start video stream
  - action: divider
  - action: streamoff
    async: true
    command: sudo systemctl stop webcamd
    confirm: <b>Stop</b> the stream?
    ignore: true
    debug: true
    name: Stop video stream
webcam:
  stream: /webcam/?action=stream
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, "config.yaml")
    return str(info.value)


def test_real_octoprint_file_loads_and_ignores_other_sections() -> None:
    config = parse(OCTOPRINT_FILE, "config.yaml")
    assert config.server.commands.serverRestartCommand == "sudo service octoprint restart"
    streamon, divider, streamoff = config.system.actions
    assert streamon.confirm is None
    assert divider.action == "divider"
    assert streamoff.is_async and streamoff.ignore and streamoff.confirm == "<b>Stop</b> the stream?"
    assert config.sysmenu.host == "127.0.0.1"  # server.host is OctoPrint's, not ours


def test_demo_config_is_valid_and_harmless() -> None:
    config = parse(DEMO_CONFIG)
    catalogue = Catalogue(config)
    assert all(spec.command.startswith("echo ") for spec in catalogue.specs["core"])  # type: ignore[union-attr]
    commands = [s.command or "" for specs in catalogue.specs.values() for s in specs]
    assert not any(word in c for c in commands for word in ("shutdown ", "sudo", "rm ", "systemctl"))
    assert load(None).source == "<built-in demo>"


def test_bad_value_names_key_line_and_value() -> None:
    text = "system:\n  actions:\n    - action: a\n      command: x\n      timeout: -1\n"
    assert error_of(text) == (
        "config.yaml, line 5: system.actions.0.timeout = -1: Input should be greater than 0"
    )


def test_unknown_key_in_action_is_an_error_with_line() -> None:
    text = "system:\n  actions:\n    - action: a\n      confrim: yes\n"
    assert error_of(text) == "config.yaml, line 4: unknown key 'system.actions.0.confrim'"


def test_unknown_sysmenu_key_is_an_error() -> None:
    assert error_of("sysmenu:\n  prot: 80\n") == "config.yaml, line 2: unknown key 'sysmenu.prot'"


def test_async_key_is_named_as_written() -> None:
    text = "system:\n  actions:\n    - action: a\n      async: maybe\n"
    message = error_of(text)
    assert "line 4: system.actions.0.async = 'maybe'" in message


def test_every_error_is_reported() -> None:
    text = "sysmenu:\n  port: 0\n  default_timeout: abc\n"
    message = error_of(text)
    assert "line 2: sysmenu.port = 0" in message
    assert "line 3: sysmenu.default_timeout = 'abc'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [\n", "config.yaml, line 2: not valid YAML"),
        ("- just\n- a list\n", "config.yaml: the top level must be a mapping"),
        ("system:\n  actions: nope\n", "line 2: system.actions = 'nope'"),
        ("system:\n  actions:\n  - name: x\n", "line 3: system.actions.0.action: Field required"),
        ("sysmenu:\n  trusted_proxies: [not-an-ip]\n", "sysmenu.trusted_proxies"),
        ("system:\n  actions:\n  - action: ''\n", "system.actions.0.action = ''"),
    ],
)
def test_malformed_configs(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_empty_sections_and_empty_file_are_defaults() -> None:
    assert parse("").system.actions == []
    config = parse("server:\nsystem:\n  actions:\nsysmenu:\n")
    assert config.system.actions == [] and config.sysmenu.port == 5000


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"system:\n  actions:\n  - action: caf\xe9\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load(bad)


def test_data_dir_default_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert parse("").data_dir() == tmp_path / "sysmenu"
    assert parse("sysmenu:\n  data_dir: /srv/x\n").data_dir() == Path("/srv/x")


def test_per_command_settings() -> None:
    text = (
        "system:\n  actions:\n  - action: a\n    command: x\n"
        "    timeout: 2.5\n    concurrency: 3\n    queue: true\n"
    )
    (action,) = parse(text).system.actions
    assert (action.timeout, action.concurrency, action.queue) == (2.5, 3, True)
    assert "concurrency = 0" in error_of(text.replace("concurrency: 3", "concurrency: 0"))


def test_every_config_key_is_documented_in_readme() -> None:
    from sysmenu.config import Action, ServerCommands, Settings

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`sysmenu.{name}`" in readme, name
    for name, field in Action.model_fields.items():
        assert f"`{field.alias or name}`" in readme, name
    for name in ServerCommands.model_fields:
        assert f"`server.commands.{name}`" in readme, name
