"""The ``sysmenu.mqtt`` section and what it decides: topics, exposure, discovery ids."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sysmenu import mqtt_topics as topics
from sysmenu.catalogue import Catalogue, CommandSpec
from sysmenu.config import parse
from sysmenu.errors import ConfigError
from sysmenu.mqtt_settings import MqttSettings, node_id


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, "c.yaml")
    return str(info.value)


def test_absent_or_null_means_off() -> None:
    assert parse("").sysmenu.mqtt is None
    assert parse("sysmenu:\n  mqtt:\n").sysmenu.mqtt is None


def test_defaults_follow_the_hostname(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "pi.one")
    settings = parse("sysmenu:\n  mqtt:\n    host: broker.lan\n").sysmenu.mqtt
    assert settings is not None
    assert (settings.host, settings.port, settings.expose) == ("broker.lan", 1883, "marked")
    assert settings.prefix == "sysmenu/pi_one" and settings.root == "sysmenu"
    assert settings.client_identity() == "sysmenu-pi_one"
    assert settings.discovery_prefix == "homeassistant" and settings.discovery
    assert not settings.uses_tls


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("port: 1", "line 2: sysmenu.mqtt.host: Field required"),
        ("host: b\n    port: 0", "sysmenu.mqtt.port = 0"),
        ("host: b\n    expose: some", "sysmenu.mqtt.expose = 'some': Input should be 'marked' or 'all'"),
        ("host: b\n    topic_prefix: 'a/+/b'", "sysmenu.mqtt.topic_prefix = 'a/+/b'"),
        ("host: b\n    topic_prefix: /a", "sysmenu.mqtt.topic_prefix = '/a'"),
        ("host: b\n    hots: c", "unknown key 'sysmenu.mqtt.hots'"),
        (
            "host: b\n    password_file: /p\n    password_env: P",
            "give password_file or password_env, not both",
        ),
        ("host: b\n    cert_file: /c", "needs both cert_file and key_file"),
        ("host: b\n    keepalive: 1", "sysmenu.mqtt.keepalive = 1"),
    ],
)
def test_bad_values_name_key_line_and_value(snippet: str, message: str) -> None:
    assert message in error_of(f"sysmenu:\n  mqtt:\n    {snippet}\n")


def test_the_action_flag_is_a_boolean() -> None:
    text = "system:\n  actions:\n  - action: a\n    command: x\n    mqtt: maybe\n"
    assert "system.actions.0.mqtt = 'maybe'" in error_of(text)
    (action,) = parse(text.replace("maybe", "yes")).system.actions
    assert action.mqtt is True


def test_password_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    assert MqttSettings("b", password_file=tmp_path / "pw").password() == "s3cret"
    monkeypatch.setenv("BROKER_PW", "from-env")
    assert MqttSettings("b", password_env="BROKER_PW").password() == "from-env"
    assert MqttSettings("b").password() is None


def test_a_password_variable_that_is_not_set_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROKER_PW", raising=False)
    with pytest.raises(
        OSError, match=r"environment variable BROKER_PW \(sysmenu.mqtt.password_env\) is not set"
    ):
        MqttSettings("b", password_env="BROKER_PW").password()
    monkeypatch.setenv("BROKER_PW", "")  # set, if empty: the broker decides
    assert MqttSettings("b", password_env="BROKER_PW").password() == ""


def test_which_commands_are_exposed() -> None:
    config = parse(
        "server:\n  commands:\n    systemShutdownCommand: 'true'\n"
        "system:\n  actions:\n"
        "  - {action: plain, command: 'true'}\n"
        "  - {action: marked, command: 'true', mqtt: true}\n"
        "  - {action: hidden, command: 'true', mqtt: false}\n"
        "  - {action: fresh, command: 'true', fresh_credentials: true}\n"
        "  - {action: fresh_marked, command: 'true', fresh_credentials: true, mqtt: true}\n"
        "  - {action: 'a/b', command: 'true', mqtt: true}\n"
        "  - {action: nocommand, mqtt: true}\n"
        "  - {action: program, argv: [/bin/true], mqtt: true}\n"
        "  - {action: empty, command: '', mqtt: true}\n"
        "  - {action: divider}\n"
    )
    specs = [s for specs in Catalogue(config).specs.values() for s in specs]

    def shown(expose: str) -> list[str]:
        settings = MqttSettings("b", expose=expose)
        return [s.action for s in specs if topics.exposed(s, settings)]

    # an argv list runs as a command line does; an empty command line runs too (as over HTTP)
    assert shown("marked") == ["marked", "fresh_marked", "program", "empty"]
    # never core shutdown, never `fresh`
    assert shown("all") == ["plain", "marked", "fresh_marked", "program", "empty"]


def test_request_topics_parse_back() -> None:
    prefix = "site/pi-1"
    topic = topics.request_topic(prefix, "custom", "grüß", "fleet")
    assert topics.parse_request(prefix, topic) == ("custom", "grüß", "fleet")
    assert topics.parse_request(prefix, f"{prefix}/request/custom/a") is None
    assert topics.parse_request(prefix, f"{prefix}/request/custom/a/b/c") is None
    assert topics.parse_request(prefix, "other/pi-1/request/custom/a/b") is None


def test_object_ids_are_safe_and_distinct() -> None:
    ids = {topics.object_id(CommandSpec("custom", a, a, "x")) for a in ("grüß", "grü?", "gr__", "a b")}
    assert len(ids) == 4 and all(node_id(i) == i for i in ids)
    assert topics.object_id(CommandSpec("custom", "reboot-now", "r", "x")) == "custom_reboot-now"
