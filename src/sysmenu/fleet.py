"""The fleet seen through the broker: which hosts there are, and running a command on many.

Used by ``sysmenu fleet`` (and the fleet benchmark). Hosts are found from their
retained ``status`` and ``device`` topics; a marker message this client sends
itself after subscribing tells when the broker has handed over every retained
message (a broker delivers one client's messages in order): that works on MQTT 3.1.1
too. Requests are MQTT v5 with a response topic under each host's own prefix and
correlation data, so running needs a v5 broker.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from . import mqtt_topics as topics
from .mqtt_refusals import refusals
from .mqtt_settings import MqttSettings

DEFAULT_SENDER = "fleet"
_ACL = (
    "does the broker's ACL let this user read and write it? (contrib/mosquitto's lets the"
    " user fleet: sysmenu.mqtt.username)"
)


@dataclass
class Host:
    name: str
    online: bool = False
    version: str | None = None
    url: str | None = None
    commands: list[dict[str, str]] = field(default_factory=list)

    def offers(self, source: str, action: str) -> bool:
        return any(c.get("source") == source and c.get("action") == action for c in self.commands)


@dataclass
class Outcome:
    """One host's answer to a fleet run (or why there is none)."""

    host: str
    state: str  # the run's state, or "no answer", "offline", "not offered", "refused"
    returncode: int | None = None
    duration: float | None = None
    output: str = ""
    error: str | None = None
    run: int | None = None
    answered_after: float | None = None  # seconds from sending the request

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sender_of(settings: MqttSettings) -> str:
    """The name this controller writes into request topics (the broker user, as the ACL wants)."""
    return settings.username or DEFAULT_SENDER


def client(
    settings: MqttSettings, protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5
) -> aiomqtt.Client:
    """A client for a controller (v5 unless told), with an identity of its own (never the
    server's). `find_hosts` works on MQTT 3.1.1 too; `run_on` needs v5 (response topics)."""
    mqtt = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password(),
        identifier=f"{settings.client_identity()}-fleet-{secrets.token_hex(4)}",
        protocol=protocol,
        keepalive=settings.keepalive,
        timeout=10,
        tls_context=topics.tls_context(settings),
        socket_options=topics.NO_DELAY,
    )
    refusals(mqtt)  # watched from the start: what the broker refuses is known at once
    return mqtt


async def _until_marker(
    mqtt: aiomqtt.Client, marker_topic: str, on_message: Callable[[aiomqtt.Message], None], timeout: float
) -> None:
    nonce = secrets.token_bytes(8)
    await mqtt.publish(marker_topic, nonce, qos=1)
    reason = refusals(mqtt).pop(marker_topic)
    if reason is not None:
        raise aiomqtt.MqttError(
            f"the broker refused this client's message on {marker_topic} ({reason}): {_ACL}"
        )
    try:
        async with asyncio.timeout(timeout):
            async for message in mqtt.messages:
                if message.topic.value == marker_topic and message.payload == nonce:
                    return
                on_message(message)
    except TimeoutError:
        raise aiomqtt.MqttError(
            f"the broker did not send back this client's message on {marker_topic} within {timeout:g} s:"
            f" {_ACL}"
        ) from None


async def find_hosts(mqtt: aiomqtt.Client, root: str, sender: str, timeout: float = 10.0) -> dict[str, Host]:
    """Every host with a retained status or device message under `root`."""
    marker = f"{root}/_fleet/{sender}/sync"
    await mqtt.subscribe([(f"{root}/+/status", 1), (f"{root}/+/device", 1), (marker, 1)])
    hosts: dict[str, Host] = {}

    def take(message: aiomqtt.Message) -> None:
        name, kind = message.topic.value[len(root) + 1 :].split("/", 1)
        host = hosts.setdefault(name, Host(name))
        payload = message.payload if isinstance(message.payload, bytes) else b""
        if kind == "status":
            host.online = payload == b"online"
            return
        try:
            document = json.loads(payload)
        except ValueError:
            return
        if isinstance(document, dict):  # what another host publishes is checked, not trusted
            host.version = _typed(document.get("version"), str)
            host.url = _typed(document.get("url"), str)
            commands = document.get("commands")
            host.commands = _commands(commands) if isinstance(commands, list) else []

    await _until_marker(mqtt, marker, take, timeout)
    return hosts


def select(hosts: dict[str, Host], pattern: str | None) -> list[Host]:
    """Hosts whose name matches the glob `pattern` (all when None), by name."""
    chosen = [h for name, h in hosts.items() if pattern is None or fnmatch.fnmatchcase(name, pattern)]
    return sorted(chosen, key=lambda h: h.name)


async def run_on(
    mqtt: aiomqtt.Client,
    root: str,
    sender: str,
    hosts: list[Host],
    source: str,
    action: str,
    timeout: float,
    progress: Callable[[Outcome], None] | None = None,
    args: Sequence[str] = (),
) -> list[Outcome]:
    """Run source:action on `hosts` at once; every host gets an outcome, in `hosts`' order.
    `args` are ``NAME=VALUE`` texts that each host checks against its command's arguments."""
    nonce = secrets.token_hex(6)
    outcomes: dict[str, Outcome] = {}
    targets = []
    for host in hosts:
        if not host.online:
            outcomes[host.name] = Outcome(host.name, "offline")
        elif host.commands and not host.offers(source, action):
            outcomes[host.name] = Outcome(host.name, "not offered")
        else:
            targets.append(host.name)
    await mqtt.subscribe(f"{root}/+/response/{sender}/{nonce}", qos=1)
    payload = topics.dumps({"args": list(args)} if args else {})
    sent = time.monotonic()
    for name in targets:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = f"{root}/{name}/response/{sender}/{nonce}"
        properties.CorrelationData = name.encode()
        topic = topics.request_topic(f"{root}/{name}", source, action, sender)
        await mqtt.publish(topic, payload, qos=1, properties=properties)
        reason = refusals(mqtt).pop(topic)
        if reason is not None:  # the ACL does not let this user ask that host
            outcomes[name] = Outcome(name, "refused", error=f"the broker refused the request ({reason})")
            if progress is not None:
                progress(outcomes[name])
    waiting = {name for name in targets if name not in outcomes}
    if waiting:
        await _collect(mqtt, waiting, outcomes, sent, timeout, progress)
    for name in waiting:
        outcomes[name] = Outcome(name, "no answer")
    return [outcomes[h.name] for h in hosts]


async def _collect(
    mqtt: aiomqtt.Client,
    waiting: set[str],
    outcomes: dict[str, Outcome],
    sent: float,
    timeout: float,
    progress: Callable[[Outcome], None] | None,
) -> None:
    """The answers of the hosts in `waiting`, as they come, until all are in or `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            async for message in mqtt.messages:
                outcome = _outcome(message, waiting, time.monotonic() - sent)
                if outcome is None:
                    continue
                waiting.discard(outcome.host)
                outcomes[outcome.host] = outcome
                if progress is not None:
                    progress(outcome)
                if not waiting:
                    return
    except TimeoutError:
        pass


def _outcome(message: aiomqtt.Message, waiting: set[str], elapsed: float) -> Outcome | None:
    correlation = getattr(message.properties, "CorrelationData", None)
    host = correlation.decode("utf-8", "replace") if isinstance(correlation, bytes) else None
    if host not in waiting or not isinstance(message.payload, bytes):
        return None
    try:
        body = json.loads(message.payload)
    except ValueError:
        return Outcome(host, "refused", error="unreadable answer", answered_after=elapsed)
    if not isinstance(body, dict):
        return Outcome(host, "refused", error="unreadable answer", answered_after=elapsed)
    if "error" in body:  # not run: not offered there (404), busy (409), malformed (400)
        state = "not offered" if body.get("status") == 404 else "refused"
        return Outcome(host, state, error=str(body["error"]), answered_after=elapsed)
    return Outcome(
        host,
        str(body.get("state")),
        _typed(body.get("returncode"), int),
        _typed(body.get("duration"), (int, float)),
        _typed(body.get("output"), str) or "",
        run=_typed(body.get("id"), int),
        answered_after=elapsed,
    )


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    """`value` if it is a `kind` (a bool is no number here), else None."""
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _commands(listed: list[Any]) -> list[dict[str, str]]:
    """The well-formed entries of a device document's command list, their text fields only."""
    return [
        {k: v for k, v in c.items() if isinstance(v, str)}
        for c in listed
        if isinstance(c, dict) and isinstance(c.get("source"), str) and isinstance(c.get("action"), str)
    ]
