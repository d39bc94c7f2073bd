"""Messages the broker refuses to take: what its ACL does not let this client publish.

An MQTT v5 broker answers such a publish with a PUBACK whose reason is "Not authorized"
(Mosquitto then drops the message). aiomqtt does not pass that reason on: without this, a
host whose broker user does not fit the ACL looks connected while nothing it says arrives
anywhere, and a fleet controller waits for answers to requests that were never delivered.
`refusals(client)` hooks paho's PUBACK callback of one client and keeps what it refused,
by topic (an MQTT 3.1.1 broker cannot say: it acknowledges and drops). `twin_hint` is
what the link says when the broker keeps dropping its connections at once (another client
with its client id, which Mosquitto 2.0 does not name: it just closes the connection).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import aiomqtt

from .mqtt_settings import MqttSettings

Report = Callable[[str, str], None]


class Refusals:
    """What the broker refused of one client's publishes: topic -> the broker's reason."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.refused: dict[str, str] = {}
        self.reports: list[Report] = []
        paho = client._client  # aiomqtt's paho client
        forward: Any = paho.on_publish  # aiomqtt's, which sets its publish futures

        def on_publish(paho_client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            if getattr(reason, "is_failure", False):
                # paho still holds the message while its callback runs
                message = getattr(paho_client, "_out_messages", {}).get(mid)
                self._refused(str(getattr(message, "topic", "(unknown topic)")), str(reason))
            if forward is not None:
                forward(paho_client, userdata, mid, reason, properties)

        paho.on_publish = on_publish

    def _refused(self, topic: str, reason: str) -> None:
        self.refused[topic] = reason
        for report in self.reports:
            report(topic, reason)

    def pop(self, topic: str) -> str | None:
        """Why the broker refused the last message published on `topic`, if it did."""
        return self.refused.pop(topic, None)


_WATCHED: weakref.WeakKeyDictionary[aiomqtt.Client, Refusals] = weakref.WeakKeyDictionary()


def refusals(client: aiomqtt.Client) -> Refusals:
    """The refusals of `client`, watched from the first call on."""
    found = _WATCHED.get(client)
    if found is None:
        found = _WATCHED[client] = Refusals(client)
    return found


def hint(settings: MqttSettings) -> str:
    """What to check when the broker refuses a message: the user and the ACL."""
    user = settings.username or "(none)"
    return (
        f"does the broker's ACL let user {user} publish there? With contrib/mosquitto's ACL a"
        f" host's user is its name, {settings.host_name!r} (the last level of topic_prefix),"
        " and that name holds only letters, digits, _ and -"
    )


def twin_hint(settings: MqttSettings) -> str:
    """What to say when connections keep ending at once: most often, a twin."""
    return (
        "connections keep ending soon after they begin. If another client uses this host's client"
        f" id, {settings.client_identity()} (a second host with the same name, such as a cloned SD"
        " card), the broker drops one for the other each time: give each host its own name, or"
        " topic_prefix and client_id"
    )
