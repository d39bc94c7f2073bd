"""What sysmenu publishes on MQTT and where: topics, Home Assistant discovery, payloads.

Plain functions of the settings and the catalogue (no broker, no aiomqtt), so the
fleet CLI, the link and the tests share one definition of every topic.

Topics under a host's prefix (``sysmenu/<host>`` by default):

- ``status``: ``online`` / ``offline``, retained, and the last will;
- ``device``: what the host offers (version, page, exposed commands), retained;
- ``state/<source>/<action>``: the command's last run, retained;
- ``event/<source>/<action>``: a run started or ended;
- ``request/<source>/<action>/<sender>``: run the command; `sender` names who asks, and
  the broker's ACL makes sure each client can only write its own name there;
- ``response/<sender>/...``: where fleet controllers ask hosts to answer (MQTT v5).
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import __version__
from .arguments import ArgumentsInvalid, Value, check_values, values_from_text
from .catalogue import CommandSpec
from .models import RunRecord
from .mqtt_settings import MqttSettings, node_id

if TYPE_CHECKING:
    import aiomqtt
from .policy import name_problem

HA_SENDER = "homeassistant"  # the sender level of Home Assistant's button topics
PRESS = "PRESS"
OUTPUT_TAIL = 2000  # characters of output a result carries
_TOPIC_UNSAFE = set("+#/\x00")
# Small messages both ways (a request, its answer): Nagle's algorithm would hold each
# one back for the peer's delayed ACK, tens of milliseconds.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closed when its handshake fails: paho-mqtt leaves such a socket to the garbage
    collector, one per refused attempt."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def refuses_v5(error: BaseException) -> bool:
    """Whether a connection failed because the broker does not speak MQTT v5: its CONNACK
    said "unsupported protocol version" (v5's code 132; a 3.1.1-only broker answers with
    3.1.1's code 1, which paho reports as 132). Only a CONNACK counts, not a failed publish
    whose error number happens to be 1."""
    from aiomqtt.exceptions import MqttConnectError  # only the link and the fleet connect

    return isinstance(error, MqttConnectError) and error.rc in (1, 132)


def settle(client: aiomqtt.Client) -> None:
    """Read the error a dropped connection left on `client`. aiomqtt's ``__aexit__`` does
    not when the connection is already gone, and asyncio then reports it as "Future
    exception was never retrieved", an error line per dropped connection. Call it last
    inside ``async with client``: the exit checks the same future at once."""
    dropped = client._disconnected  # private in aiomqtt 2: there is no public way
    if dropped.done() and not dropped.cancelled():
        dropped.exception()


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context of the broker connection: its CA file or the system's CAs, the
    broker's name checked, and the client certificate if there is one. None: plain MQTT."""
    if not settings.uses_tls:
        return None
    cafile = str(settings.ca_file.expanduser()) if settings.ca_file else None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except OSError as exc:  # ssl's errors name no file
        raise OSError(f"sysmenu.mqtt.ca_file {cafile}: {exc.strerror or exc}") from None
    context.sslsocket_class = _ClosingSSLSocket
    if settings.cert_file is not None and settings.key_file is not None:
        cert, key = settings.cert_file.expanduser(), settings.key_file.expanduser()
        try:
            context.load_cert_chain(cert, key)
        except OSError as exc:
            raise OSError(f"sysmenu.mqtt.cert_file {cert} / key_file {key}: {exc.strerror or exc}") from None
    return context


def exposed(spec: CommandSpec, settings: MqttSettings) -> bool:
    """Whether `spec` is offered over MQTT: an explicit ``mqtt:`` decides; otherwise
    ``expose: all`` shows every command but those that need fresh credentials."""
    if spec.is_divider or not spec.runnable or _TOPIC_UNSAFE & set(spec.action):
        return False
    if spec.mqtt is not None:
        return spec.mqtt
    return settings.expose == "all" and not spec.fresh_credentials


def status_topic(prefix: str) -> str:
    return f"{prefix}/status"


def device_topic(prefix: str) -> str:
    return f"{prefix}/device"


def state_topic(prefix: str, spec: CommandSpec) -> str:
    return f"{prefix}/state/{spec.source}/{spec.action}"


def event_topic(prefix: str, spec: CommandSpec) -> str:
    return f"{prefix}/event/{spec.source}/{spec.action}"


def is_state_topic(prefix: str, topic: str) -> bool:
    """Whether `topic` is one of the ``state/<source>/<action>`` topics under `prefix`."""
    head = f"{prefix}/state/"
    return topic.startswith(head) and len(topic[len(head) :].split("/")) == 2


def request_topic(prefix: str, source: str, action: str, sender: str) -> str:
    return f"{prefix}/request/{source}/{action}/{sender}"


def parse_request(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """(source, action, sender) of a request topic under `prefix`, else None."""
    head = f"{prefix}/request/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def object_id(spec: CommandSpec) -> str:
    """A Home Assistant object id for `spec`: safe characters, distinct per command."""
    raw = f"{spec.source}_{spec.action}"
    safe = node_id(raw)
    if safe != raw:
        safe += "_" + hashlib.sha256(raw.encode()).hexdigest()[:6]
    return safe


def page_url(settings: MqttSettings, host: str, port: int) -> str:
    if settings.configuration_url:
        return settings.configuration_url
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def device_info(settings: MqttSettings, url: str) -> dict[str, Any]:
    return {
        "identifiers": [f"sysmenu_{settings.node}"],
        "name": settings.host_name,
        "manufacturer": "sysmenu",
        "model": "sysmenu",
        "sw_version": __version__,
        "configuration_url": url,
    }


def device_document(settings: MqttSettings, specs: list[CommandSpec], url: str) -> dict[str, Any]:
    """The retained ``device`` topic: what `sysmenu fleet hosts` lists."""
    return {
        "host": settings.host_name,
        "version": __version__,
        "url": url,
        "commands": [{"source": s.source, "action": s.action, "name": s.name} for s in specs],
    }


def pressable(spec: CommandSpec) -> bool:
    """Whether a button can run `spec`: a press carries no values, so not when an argument
    is required (such a command is still offered to requests, which carry them)."""
    return not any(argument.required for argument in spec.arguments)


def discovery(settings: MqttSettings, specs: list[CommandSpec], url: str) -> dict[str, dict[str, Any]]:
    """Home Assistant discovery messages by topic: a button and a last-run sensor per command."""
    prefix, node = settings.prefix, settings.node
    device = device_info(settings, url)
    availability = {
        "availability_topic": status_topic(prefix),
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    messages: dict[str, dict[str, Any]] = {}
    for spec in specs:
        obj = object_id(spec)
        if pressable(spec):
            messages[f"{settings.discovery_prefix}/button/{node}/{obj}/config"] = {
                "name": spec.name,
                "unique_id": f"sysmenu_{node}_{obj}",
                "object_id": f"{node}_{obj}",
                "command_topic": request_topic(prefix, spec.source, spec.action, HA_SENDER),
                "payload_press": PRESS,
                "qos": 1,
                "device": device,
                **availability,
            }
        messages[f"{settings.discovery_prefix}/sensor/{node}/{obj}_last_run/config"] = {
            "name": f"{spec.name} last run",
            "unique_id": f"sysmenu_{node}_{obj}_last_run",
            "object_id": f"{node}_{obj}_last_run",
            "state_topic": state_topic(prefix, spec),
            "value_template": "{{ value_json.state }}",
            "json_attributes_topic": state_topic(prefix, spec),
            "icon": "mdi:console",
            "qos": 1,
            "device": device,
            **availability,
        }
    return messages


def is_own_discovery(settings: MqttSettings, topic: str) -> bool:
    parts = topic.split("/")
    head = settings.discovery_prefix.split("/")
    return (
        len(parts) == len(head) + 4
        and parts[: len(head)] == head
        and parts[len(head) + 1] == settings.node
        and parts[-1] == "config"
    )


def run_state(run: RunRecord) -> dict[str, object]:
    """The retained last-run state of a command (also the sensor's attributes): times as
    seconds since the epoch, and as ISO 8601 (UTC) for people (Home Assistant shows them)."""
    keys = ("id", "state", "returncode", "signal", "started", "ended", "duration", "user", "auth")
    state: dict[str, object] = {k: getattr(run, k) for k in keys}
    state["started_at"], state["ended_at"] = _iso(run.started), _iso(run.ended)
    return state


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def result(host: str, run: RunRecord, output: str) -> dict[str, object]:
    """A finished run as a response or an end event carries it."""
    return {"host": host, **run_state(run), "output": output[-OUTPUT_TAIL:]}


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def reply_address(properties: Any) -> tuple[str | None, bytes | None]:
    if properties is None:
        return None, None
    reply_to = getattr(properties, "ResponseTopic", None) or None
    correlation = getattr(properties, "CorrelationData", None)
    if reply_to is not None and ("+" in reply_to or "#" in reply_to):
        reply_to = None
    return reply_to, correlation


def may_answer_on(settings: MqttSettings, topic: str) -> bool:
    """Whether a request may have its answer sent to `topic`: not to a topic of this host's
    own but ``response/...`` (an answer on its request topics would be a request in a name
    of the asker's choosing; on its status, state or discovery, a lie), nor to discovery."""
    own, prefix = f"{settings.prefix}/", f"{settings.prefix}/response/"
    return (topic.startswith(prefix) or not topic.startswith(own)) and not topic.startswith(
        f"{settings.discovery_prefix}/"
    )


def request_values(spec: CommandSpec, payload: bytes) -> dict[str, Value]:
    """The checked argument values of a (valid) request: ``{"arguments": {...}}`` as over
    HTTP, or ``{"args": ["NAME=VALUE", ...]}`` as ``sysmenu run --arg`` takes them (what
    ``sysmenu fleet run --arg`` sends: the host knows the types). None in an empty or
    ``PRESS`` payload. `ArgumentsInvalid` (a 400) says what does not fit."""
    text = payload.strip()
    body = {} if not text or text == PRESS.encode() else json.loads(text)
    pairs = body.get("args")
    if pairs is None:
        return check_values(spec.arguments, body.get("arguments", {})) if spec.arguments else {}
    if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
        raise ArgumentsInvalid({"args": "should be a list of NAME=VALUE texts"})
    if "arguments" in body:
        raise ArgumentsInvalid({"args": "and arguments cannot both be given"})
    if pairs and not spec.arguments:
        raise ArgumentsInvalid({"args": f"given, but {spec.source}:{spec.action} takes no arguments"})
    return values_from_text(spec.arguments, pairs)


def request_problem(sender: str, payload: bytes, max_size: int) -> tuple[str, int] | None:
    """Why a request is not run, as (error, HTTP-like status), or None: too large (413, as
    over HTTP), not a request (400), or a sender that is not a user name (400: who asks
    becomes the run's user, and user names have no spaces and 64 characters at most)."""
    if len(payload) > max_size:
        return "Request body too large", 413
    if not valid_request(payload):
        return "Malformed request", 400
    problem = name_problem(sender)
    return None if problem is None else (problem, 400)


def valid_request(payload: bytes) -> bool:
    """A request is empty, ``PRESS`` (Home Assistant's button) or a JSON object."""
    text = payload.strip()
    if not text or text == PRESS.encode():
        return True
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False
