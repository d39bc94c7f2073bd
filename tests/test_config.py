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


def test_unknown_key_in_action_is_a_warning_with_line() -> None:
    """OctoPrint runs such a file (a plugin's key, an old guide's, or a typo): so does sysmenu."""
    text = "system:\n  actions:\n    - action: a\n      confrim: yes\n      command: 'true'\n"
    config = parse(text, "config.yaml")
    assert config.warnings == ("config.yaml, line 4: unknown key 'system.actions.0.confrim'",)
    assert config.system.actions[0].command == "true"


def test_entry_without_action_is_a_warning_and_skipped() -> None:
    config = parse("system:\n  actions:\n  - name: x\n  - action: b\n    asynch: true\n", "config.yaml")
    assert config.warnings == (
        "config.yaml, line 3: system.actions.0.action: Field required",
        "config.yaml, line 5: unknown key 'system.actions.1.asynch'",
    )
    assert [a.action for a in config.system.actions] == ["b"]
    assert config.system.actions[0].is_async is False  # the typo did not make it async


@pytest.mark.parametrize("action", ["bad/slash", ".", ".."])
def test_action_that_no_url_reaches_is_a_warning(action: str) -> None:
    config = parse(f"system:\n  actions:\n  - action: '{action}'\n    command: 'true'\n", "config.yaml")
    (warning,) = config.warnings
    assert warning.startswith(f"config.yaml, line 3: system.actions.0.action = '{action}': can never be run")


def test_strict_makes_warnings_errors() -> None:
    text = "sysmenu:\n  strict: true\nsystem:\n  actions:\n  - action: a\n    asynch: true\n"
    message = error_of(text)
    assert "config.yaml, line 6: unknown key 'system.actions.0.asynch'" in message
    assert "sysmenu.strict" in message
    assert parse(text.replace("true\nsystem", "false\nsystem"), "config.yaml").warnings


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
    from sysmenu.config import MQTT_KEYS, SERVER_COMMAND_KEYS, SETTINGS_KEYS
    from sysmenu.config_actions import ACTION_KEYS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in SETTINGS_KEYS:
        assert f"`sysmenu.{name}`" in readme, name
    for name in MQTT_KEYS:
        assert f"`sysmenu.mqtt.{name}`" in readme, name
    for name in ACTION_KEYS:
        assert f"`{name}`" in readme, name
    for name in SERVER_COMMAND_KEYS:
        assert f"`server.commands.{name}`" in readme, name


@pytest.mark.parametrize(
    ("snippet", "attribute", "value"),
    [
        ("async: yes", "is_async", True),  # YAML 1.2 reads yes as a string; OctoPrint files use it
        ("async: 'off'", "is_async", False),
        ("ignore: 1", "ignore", True),
        ("timeout: '2.5'", "timeout", 2.5),
        ("timeout: 3", "timeout", 3.0),
        ("concurrency: '4'", "concurrency", 4),
        ("concurrency: 2.0", "concurrency", 2),
        ("confirm: false", "confirm", None),
        ("name: null", "name", None),
    ],
)
def test_values_are_read_as_octoprint_files_write_them(snippet: str, attribute: str, value: object) -> None:
    (action,) = parse(f"system:\n  actions:\n  - action: a\n    {snippet}\n").system.actions
    assert getattr(action, attribute) == value
    assert type(getattr(action, attribute)) is type(value)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("timeout: .inf", "timeout = inf: Input should be a finite number"),
        ("timeout: .nan", "Input should be a finite number"),
        ("timeout: true", "timeout = True: Input should be a valid number"),
        ("concurrency: 2.5", "concurrency = 2.5: Input should be a valid integer"),
        ("concurrency: [1]", "concurrency = [1]: Input should be a valid integer"),
        ("ignore: 2", "ignore = 2: Input should be a valid boolean"),
        ("name: 5", "name = 5: Input should be a valid string"),
        ("confirm: true", "confirm = True: Input should be a valid string"),
        ("action: '  '", "action = '  ': String should have at least 1 character"),
    ],
)
def test_action_values_that_do_not_fit(snippet: str, message: str) -> None:
    text = f"system:\n  actions:\n  - action: a\n    {snippet}\n"
    if snippet.startswith("action:"):
        text = f"system:\n  actions:\n  - {snippet}\n"
    assert error_of(text).endswith(message)
    assert ", line " in error_of(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sysmenu:\n  log_level: loud\n", "Input should be 'debug', 'info', 'warning' or 'error'"),
        ("sysmenu:\n  port: 70000\n", "sysmenu.port = 70000: Input should be less than or equal to 65535"),
        ("sysmenu:\n  port: null\n", "sysmenu.port = None: Input should be a valid integer"),
        ("sysmenu:\n  host: ' '\n", "sysmenu.host = ' '"),
        ("sysmenu:\n  trusted_proxies: 10.0.0.1\n", "Input should be a valid list"),
        ("sysmenu: [1]\n", "sysmenu = [1]: Input should be a valid dictionary"),
        ("server:\n  commands: 5\n", "server.commands = 5: Input should be a valid dictionary"),
        ("system:\n  actions:\n  -\n", "system.actions.0 = None: Input should be a valid dictionary"),
        ("system:\n  actions:\n  - 7\n", "system.actions.0 = 7: Input should be a valid dictionary"),
    ],
)
def test_sections_that_do_not_fit(text: str, message: str) -> None:
    assert message in error_of(text)


def test_octoprint_sections_ignore_unknown_keys_and_nulls() -> None:
    text = "server:\n  host: 0.0.0.0\n  commands:\n    systemShutdownCommand: null\n    foo: 1\n"
    config = parse(text + "webcam:\n  stream: x\n")
    assert config.server.commands.systemShutdownCommand is None
    assert config.sysmenu.host == "127.0.0.1"  # server.host is OctoPrint's, not ours


def test_yaml_is_read_as_octoprint_reads_it() -> None:
    # PyYAML's safe loader, as OctoPrint: YAML 1.1 booleans, the last of duplicate keys
    text = "system:\n  actions:\n  - action: a\n    async: on\n    name: first\n    name: second\n"
    (action,) = parse(text).system.actions
    assert action.is_async is True
    assert action.name == "second"
    bad = "system:\n  actions:\n  - action: a\n    timeout: 1\n    timeout: -1\n"
    assert error_of(bad) == (
        "config.yaml, line 5: system.actions.0.timeout = -1: Input should be greater than 0"
    )


@pytest.mark.parametrize("value", ["nope", "{a: 1}"])
def test_actions_that_are_no_list_are_one_error(value: str) -> None:
    text = f"system:\n  actions: {value}\n"
    (line,) = error_of(text).splitlines()  # not one more for each character or key
    assert line.startswith("config.yaml, line 2: system.actions = ")
    assert line.endswith("Input should be a valid list")


ACCESS = """\
server:
  commands:
    systemShutdownCommand: "true"
system:
  actions:
    - action: media
      command: "true"
      allow: [family]
    - action: backup
      command: "true"
      allow: alice
      deny: [kiosk]
sysmenu:
  groups:
    family: []
    monitoring: [READ]
  core_access:
    shutdown:
      deny: [kiosk]
  keep_runs: {days: 30}
  keep_audit: {count: 1000}
"""


def test_access_rules_and_retention_are_read() -> None:
    from sysmenu.access import Rule
    from sysmenu.settings import Retention

    config = parse(ACCESS, "c.yaml")
    assert config.sysmenu.groups == {"family": (), "monitoring": ("READ",)}
    assert config.access_rules() == {
        ("core", "shutdown"): Rule(deny=frozenset({"kiosk"})),
        ("custom", "media"): Rule(allow=frozenset({"family"})),
        ("custom", "backup"): Rule(allow=frozenset({"alice"}), deny=frozenset({"kiosk"})),
    }
    assert config.sysmenu.keep_runs == Retention(30, None)
    assert config.sysmenu.keep_audit == Retention(None, 1000)
    assert parse("", "d.yaml").sysmenu.keep_runs.days and parse("", "d.yaml").sysmenu.keep_runs.count


def test_unknown_names_in_rules_are_errors_with_their_line() -> None:
    from sysmenu.config import check_access

    config = parse(ACCESS, "c.yaml")
    check_access(config, ["alice", "kiosk"], [])
    with pytest.raises(ConfigError) as info:
        check_access(config, ["alice"], [])
    message = str(info.value)
    assert "c.yaml, line 12: custom:backup: unknown user or group 'kiosk'" in message
    assert "c.yaml, line 19: core:shutdown: unknown user or group 'kiosk'" in message
    check_access(config, ["alice"], ["kiosk"])  # a group made with the CLI counts


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("allow: [family]", "allow: [1]"),
            "line 8: system.actions.0.allow = [1]: not a user or group name: 1",
        ),
        (("family: []", "admins: []"), "'admins' is a built-in group"),
        (("monitoring: [READ]", "monitoring: [ROOT]"), "unknown permission 'ROOT'"),
        (("    shutdown:\n", "    halt:\n"), "unknown core command 'halt'"),
        (("{days: 30}", "{days: 0}"), "keep_runs"),
        (("{count: 1000}", "{weeks: 2}"), "Input should be a mapping with days and/or count"),
    ],
)
def test_bad_access_and_retention_settings(change: tuple[str, str], expected: str) -> None:
    assert expected in error_of(ACCESS.replace(*change))


def test_catalogue_diff_names_commands_added_removed_changed() -> None:
    old_config = parse(ACCESS, "c.yaml")
    new_config = parse(
        ACCESS.replace("allow: [family]", "allow: [family, alice]")
        .replace('      command: "true"\n      allow: alice', "      command: backup.sh\n      allow: alice")
        .replace("  actions:\n", "  actions:\n    - action: fresh\n      command: x\n")
        .replace('    systemShutdownCommand: "true"\n', ""),
        "c.yaml",
    )
    old, new = Catalogue(old_config), Catalogue(new_config)
    rules = (old_config.access_rules(), new_config.access_rules())
    assert old.diff(new, rules) == {
        "added": ["custom:fresh"],
        "removed": ["core:shutdown"],
        "changed": ["custom:backup", "custom:media"],
    }
    assert old.diff(Catalogue(old_config), (rules[0], rules[0])) == {}


def test_environment_is_a_mapping_of_names_to_scalars() -> None:
    config = parse(
        "sysmenu:\n  environment: {TZ: UTC, N: 3}\n"
        "system:\n  actions:\n    - action: a\n      command: env\n      environment: {A_B: x}\n"
    )
    assert config.sysmenu.environment == {"TZ": "UTC", "N": "3"}
    assert config.system.actions[0].environment == {"A_B": "x"}
    (spec,) = Catalogue(config).specs["custom"]
    assert dict(spec.environment) == {"TZ": "UTC", "N": "3", "A_B": "x"}
    assert "not a valid variable name" in error_of("sysmenu:\n  environment: {'A-B': x}\n")
    assert "should be a string or a number" in error_of("sysmenu:\n  environment: {A: [1]}\n")
    assert "mapping" in error_of("sysmenu:\n  environment: [A]\n")
    assert "list of host names" in error_of("sysmenu:\n  allowed_hosts: pi.lan\n")


def test_commands_environment_is_minimal() -> None:
    import os

    from sysmenu.environment import command_environment

    env = command_environment({"TZ": "UTC"}, {"TZ": "Europe/Berlin", "X": "1"})
    assert set(env) <= {"PATH", "LANG", "HOME", "USER", "LOGNAME", "TZ", "X"}
    assert env["TZ"] == "Europe/Berlin" and env["PATH"] == os.environ["PATH"]
