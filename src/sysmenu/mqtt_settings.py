"""The ``sysmenu.mqtt`` section: how to reach the broker and what to show there.

Kept apart from `config` so that it stays plain data with its own checks; the
MQTT link itself (`sysmenu.mqtt`, which imports aiomqtt) is imported only when
this section is present.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import Check, Invalid, boolean, choice, number, optional, path, string

EXPOSE = ("marked", "all")
_LEVEL_FORBIDDEN = re.compile(r"[+#\x00]")
_NODE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class InvalidSetting(Exception):
    """A value of the section that does not fit; the message says why."""


class MissingPassword(OSError):
    """The broker password cannot be had (an OSError, as an unreadable password file)."""


def topic_prefix_check(value: Any) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise InvalidSetting("Input should be a topic such as sysmenu/pi-1")
    if _LEVEL_FORBIDDEN.search(value) or value.startswith("/") or value.endswith("/"):
        raise InvalidSetting("a topic prefix may not hold +, # or a leading or trailing /")
    return value


def node_id(text: str) -> str:
    """`text` as Home Assistant's node and object ids must be: letters, digits, _ and -."""
    return _NODE_UNSAFE.sub("_", text).strip("_") or "sysmenu"


@dataclass(frozen=True)
class MqttSettings:
    """``sysmenu.mqtt``: present (with a `host`) means MQTT is on."""

    host: str
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    client_id: str | None = None
    topic_prefix: str | None = None
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    expose: str = "marked"
    keepalive: int = 60
    configuration_url: str | None = None
    buffer: int = 1000
    reconnect_max: float = 60.0

    @property
    def prefix(self) -> str:
        """This host's topics: ``topic_prefix``, by default ``sysmenu/<hostname>``."""
        return self.topic_prefix or f"sysmenu/{node_id(socket.gethostname())}"

    @property
    def root(self) -> str:
        """Where every host's prefix lives (the prefix without its last level): the fleet's view."""
        return self.prefix.rpartition("/")[0] or self.prefix

    @property
    def host_name(self) -> str:
        """This host's name in the fleet: the last level of the prefix."""
        return self.prefix.rpartition("/")[2]

    @property
    def node(self) -> str:
        return node_id(self.host_name)

    @property
    def uses_tls(self) -> bool:
        return self.tls or any(f is not None for f in (self.ca_file, self.cert_file))

    def client_identity(self) -> str:
        return self.client_id or f"sysmenu-{self.node}"

    def password(self) -> str | None:
        """The broker password, read now from its file or environment variable (never logged)."""
        if self.password_file is not None:
            return self.password_file.expanduser().read_text(encoding="utf-8").rstrip("\r\n")
        if self.password_env is not None:
            password = os.environ.get(self.password_env)
            if password is None:  # logging in without one would only be refused, less clearly
                raise MissingPassword(
                    f"the environment variable {self.password_env} (sysmenu.mqtt.password_env) is not set"
                )
            return password
        return None


def check_section(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems that concern several keys at once, as (key, message)."""
    problems = []
    if "host" not in fields:
        problems.append(("host", "Field required"))
    if fields.get("password_file") is not None and fields.get("password_env") is not None:
        problems.append(("password_env", "give password_file or password_env, not both"))
    if (fields.get("cert_file") is None) != (fields.get("key_file") is None):
        problems.append(("key_file", "a client certificate needs both cert_file and key_file"))
    return problems


def _topic_prefix(value: Any) -> str:
    try:
        return topic_prefix_check(value)
    except InvalidSetting as exc:
        raise Invalid(str(exc)) from None


MQTT_KEYS: dict[str, tuple[str, Check]] = {
    "host": ("host", string(1)),
    "port": ("port", number(integer=True, ge=1, le=65535)),
    "tls": ("tls", boolean),
    "ca_file": ("ca_file", optional(path)),
    "cert_file": ("cert_file", optional(path)),
    "key_file": ("key_file", optional(path)),
    "username": ("username", optional(string(1))),
    "password_file": ("password_file", optional(path)),
    "password_env": ("password_env", optional(string(1))),
    "client_id": ("client_id", optional(string(1))),
    "topic_prefix": ("topic_prefix", optional(_topic_prefix)),
    "discovery": ("discovery", boolean),
    "discovery_prefix": ("discovery_prefix", _topic_prefix),
    "expose": ("expose", choice(*EXPOSE)),
    "keepalive": ("keepalive", number(integer=True, ge=5, le=65535)),
    "configuration_url": ("configuration_url", optional(string(1))),
    "buffer": ("buffer", number(integer=True, ge=0)),
    "reconnect_max": ("reconnect_max", number(gt=0)),
}
assert {a for a, _ in MQTT_KEYS.values()} == set(MqttSettings.__dataclass_fields__)
