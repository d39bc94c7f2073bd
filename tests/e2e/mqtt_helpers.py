"""Driving sysmenu's MQTT side in tests: the app on a real broker, and a watching client."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from asgi_lifespan import LifespanManager
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sysmenu.app import create_app
from sysmenu.config import parse
from sysmenu.mqtt import MqttLink
from sysmenu.state import State
from sysmenu.store import Store
from tests.e2e.broker import Broker
from tests.e2e.mqtt311_proxy import Mqtt311Proxy
from tests.e2e.server import SYSMENU, Server

WAIT = 15.0  # seconds any awaited MQTT step may take before the test fails


class App:
    def __init__(
        self, state: State, link: MqttLink | None, client: httpx.AsyncClient, store: Store, key: str
    ) -> None:
        self.state = state
        self._link = link
        self.client = client
        self.store = store
        self.key = key

    @property
    def link(self) -> MqttLink:
        assert self._link is not None
        return self._link

    async def online(self, connections: int = 1) -> None:
        """Until the link has connected `connections` times and announced itself."""
        async with asyncio.timeout(WAIT):
            while self.link.connections < connections or not self.link.connected.is_set():
                await asyncio.sleep(0.01)

    async def refused(self) -> str:
        """Until an attempt to connect has failed; its error."""
        async with asyncio.timeout(WAIT):
            while self.link.last_error is None:
                await asyncio.sleep(0.01)
        assert self.link.last_error is not None
        return self.link.last_error

    async def offline(self) -> None:
        """Until the link has noticed that the broker went away."""
        async with asyncio.timeout(WAIT):
            while self.link.connected.is_set():
                await asyncio.sleep(0.01)


@asynccontextmanager
async def running_app(tmp: Path, config_text: str, name: str = "app") -> AsyncIterator[App]:
    """The app on `config_text` in this event loop, its MQTT link connected."""
    data = tmp / name
    data.mkdir(parents=True, exist_ok=True)
    store = Store(data / "sysmenu.db")
    store.accounts.add_user("admin", ["admins"])
    key = store.accounts.create_key("admin")
    app = create_app(parse(config_text, str(data / "config.yaml")), store)
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                yield App(app.state.sysmenu, app.state.mqtt, client, store, key)
    finally:
        store.close()


@asynccontextmanager
async def watcher(
    broker: Broker | Mqtt311Proxy, protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5, **kw: Any
) -> AsyncIterator[aiomqtt.Client]:
    """A client watching `broker` (or a 3.1.1-only one: pass protocol V311, as Home
    Assistant would be there)."""
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        identifier=f"watcher-{secrets.token_hex(4)}",
        protocol=protocol,
        timeout=WAIT,
        **kw,
    ) as client:
        yield client


async def retained(
    client: aiomqtt.Client, *filters: str, marker_root: str = "test/marker"
) -> dict[str, bytes]:
    """The retained messages under `filters`, complete: a marker sent after subscribing
    comes back after all of them."""
    marker = f"{marker_root}/{secrets.token_hex(4)}"
    await client.subscribe([(f, 1) for f in (*filters, marker)])
    await client.publish(marker, b"end", qos=1)
    found: dict[str, bytes] = {}
    async with asyncio.timeout(WAIT):
        async for message in client.messages:
            if message.topic.value == marker:
                break
            if message.retain:
                found[message.topic.value] = bytes(message.payload)  # type: ignore[arg-type]
    await client.unsubscribe([*filters, marker])
    return found


async def next_message(client: aiomqtt.Client, topic_filter: str) -> aiomqtt.Message:
    """The next message matching `topic_filter` (already subscribed)."""
    async with asyncio.timeout(WAIT):
        async for message in client.messages:
            if message.topic.matches(topic_filter):
                return message
    raise AssertionError("message iteration ended")


async def last_will(client: aiomqtt.Client, server: Server, prefix: str) -> tuple[bytes, bytes]:
    """Kill `server` once `client` has seen it online: the status its last will publishes
    and the status the broker keeps."""
    status = f"{prefix}/status"
    await client.subscribe(status, qos=1)
    while (await next_message(client, status)).payload != b"online":
        pass
    server.process.send_signal(signal.SIGKILL)
    will = (await next_message(client, status)).payload
    kept = (await retained(client, status))[status]
    return bytes(will), kept  # type: ignore[arg-type]


async def request(
    client: aiomqtt.Client, topic: str, payload: bytes = b"{}", reply_to: str | None = None
) -> dict[str, Any]:
    """Publish a v5 request with a response topic and correlation data; the answer."""
    reply_to = reply_to or f"test/reply/{secrets.token_hex(4)}"
    correlation = secrets.token_bytes(6)
    await client.subscribe(reply_to, qos=1)
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.ResponseTopic = reply_to
    properties.CorrelationData = correlation
    await client.publish(topic, payload, qos=1, properties=properties)
    message = await next_message(client, reply_to)
    assert message.properties is not None
    assert message.properties.CorrelationData == correlation
    body: dict[str, Any] = json.loads(bytes(message.payload))  # type: ignore[arg-type]
    return body


async def fleet(broker: Broker | Mqtt311Proxy, tmp: Path, *args: str) -> tuple[int, str, str]:
    """The real `sysmenu fleet ...` command, as a controller would run it: its exit code,
    stdout and stderr."""
    config = tmp / "controller.yaml"
    config.write_text(f"sysmenu:\n{broker.mqtt_section(topic_prefix='sysmenu/controller')}")
    process = await asyncio.create_subprocess_exec(
        *(SYSMENU, "--config", str(config), "--data-dir", str(tmp / "controller"), "fleet", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WAIT * 2):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
