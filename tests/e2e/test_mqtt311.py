"""sysmenu on a broker that speaks only MQTT 3.1.1 (a real Mosquitto behind a proxy that
refuses v5 as such a broker does): the link falls back to 3.1.1 and everything but
request/response works; `sysmenu fleet hosts` works, `sysmenu fleet run` says it needs v5."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.e2e.broker import Broker, mosquitto
from tests.e2e.mqtt311_proxy import Mqtt311Proxy, mqtt311_only
from tests.e2e.mqtt_helpers import fleet, last_will, next_message, retained, running_app, watcher
from tests.e2e.server import Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

PREFIX = "sysmenu/pi-1"
FALLBACK = "the broker does not speak MQTT v5: using 3.1.1"


def config(proxy: Mqtt311Proxy, tmp: Path) -> str:
    return f"""\
system:
  actions:
    - action: touch
      name: Touch a file
      command: "touch {tmp}/touched"
      mqtt: true
    - action: fail
      name: Fail
      command: "echo bad >&2; exit 5"
      mqtt: true
sysmenu:
{proxy.mqtt_section(topic_prefix=PREFIX)}"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def proxy(broker: Broker) -> Iterator[Mqtt311Proxy]:
    with mqtt311_only(broker) as p:
        yield p


async def events(client: aiomqtt.Client, count: int) -> list[dict[str, Any]]:
    """The next `count` run events (already subscribed)."""
    return [
        json.loads(bytes((await next_message(client, f"{PREFIX}/event/#")).payload))  # type: ignore[arg-type]
        for _ in range(count)
    ]


def fallbacks(caplog: pytest.LogCaptureFixture) -> int:
    return sum(FALLBACK in r.getMessage() for r in caplog.records if r.name == "sysmenu.mqtt")


async def test_everything_but_request_response_works_on_mqtt_311(
    proxy: Mqtt311Proxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sysmenu.mqtt")
    async with running_app(tmp_path, config(proxy, tmp_path)) as app:
        await app.online()
        assert app.link.protocol == aiomqtt.ProtocolVersion.V311
        assert proxy.levels == [5, 4] and proxy.refused == 1  # v5 refused, then 3.1.1
        async with watcher(proxy, aiomqtt.ProtocolVersion.V311) as w:
            found = await retained(w, "homeassistant/#", f"{PREFIX}/#")
            await w.subscribe(f"{PREFIX}/event/#", qos=1)
            # a Home Assistant button: a plain publish on the command's request topic
            await w.publish(f"{PREFIX}/request/custom/touch/homeassistant", b"PRESS", qos=1)
            pressed = await events(w, 2)
            # without v5 there is no response topic: a request is answered by its events
            await w.publish(f"{PREFIX}/request/custom/fail/alice", b"{}", qos=1)
            asked = await events(w, 2)
            states = await retained(w, f"{PREFIX}/state/#")
        assert (tmp_path / "touched").exists()
        runs = app.store.runs.list()
        audit = app.store.audit.list()
    assert found[f"{PREFIX}/status"] == b"online"
    assert [c["action"] for c in json.loads(found[f"{PREFIX}/device"])["commands"]] == ["touch", "fail"]
    button = json.loads(found["homeassistant/button/pi-1/custom_touch/config"])
    assert button["command_topic"] == f"{PREFIX}/request/custom/touch/homeassistant"
    assert "homeassistant/sensor/pi-1/custom_fail_last_run/config" in found
    assert [e["event"] for e in pressed + asked] == ["start", "end", "start", "end"]
    assert (pressed[1]["state"], pressed[1]["returncode"]) == ("ok", 0)
    assert (asked[1]["state"], asked[1]["returncode"], asked[1]["output"]) == ("failed", 5, "bad\n")
    assert [(r.action, r.user, r.auth) for r in reversed(runs)] == [
        ("touch", "homeassistant", "mqtt"),
        ("fail", "alice", "mqtt"),
    ]
    assert json.loads(states[f"{PREFIX}/state/custom/touch"])["id"] == runs[1].id
    assert json.loads(states[f"{PREFIX}/state/custom/fail"])["returncode"] == 5
    executed = [(a["user"], a["detail"]["action"]) for a in audit if a["event"] == "execute"]
    assert sorted(executed) == [("alice", "fail"), ("homeassistant", "touch")]
    assert fallbacks(caplog) == 1


def test_last_will_says_offline_on_mqtt_311(proxy: Mqtt311Proxy, tmp_path: Path) -> None:
    async def watch(server: Server) -> tuple[bytes, bytes]:
        async with watcher(proxy, aiomqtt.ProtocolVersion.V311) as w:
            return await last_will(w, server, PREFIX)

    with running_server(tmp_path / "server", config(proxy, tmp_path)) as server:
        will, kept = asyncio.run(watch(server))
        server.process.wait(10)
    assert will == kept == b"offline"
    assert proxy.refused == 1 and proxy.levels.count(4) == 2  # the server (after its v5 try), the watcher


async def test_stays_on_311_after_reconnecting(
    broker: Broker, proxy: Mqtt311Proxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sysmenu.mqtt")
    async with running_app(tmp_path, config(proxy, tmp_path)) as app:
        await app.online()
        proxy.stop()  # the whole 3.1.1-only broker goes away, and forgets its retained messages
        broker.restart()
        await app.offline()
        proxy.start()
        await app.online(connections=2)
        assert app.link.protocol == aiomqtt.ProtocolVersion.V311
        assert proxy.levels == [5, 4, 4]  # no second v5 attempt
        async with watcher(proxy, aiomqtt.ProtocolVersion.V311) as w:
            found = await retained(w, f"{PREFIX}/#")
            await w.subscribe(f"{PREFIX}/event/#", qos=1)
            await w.publish(f"{PREFIX}/request/custom/touch/homeassistant", b"PRESS", qos=1)
            ended = (await events(w, 2))[1]
    assert found[f"{PREFIX}/status"] == b"online"  # announced again
    assert ended["state"] == "ok" and (tmp_path / "touched").exists()
    assert fallbacks(caplog) == 1


async def test_fleet_hosts_works_and_fleet_run_says_it_needs_v5(proxy: Mqtt311Proxy, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(proxy, tmp_path)) as app:
        await app.online()
        code, out, err = await fleet(proxy, tmp_path, "hosts", "--json")
        assert code == 0, err
        hosts = json.loads(out)
        assert [(h["name"], h["online"]) for h in hosts] == [("pi-1", True)]
        assert [c["action"] for c in hosts[0]["commands"]] == ["touch", "fail"]
        refused_before = proxy.refused
        code, out, err = await fleet(proxy, tmp_path, "run", "custom", "touch", "--all")
        runs = app.store.runs.list()
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "Error: `sysmenu fleet run` needs an MQTT v5 broker (Mosquitto 1.6 or later, EMQX...):"
        f" 127.0.0.1:{proxy.port} speaks only MQTT 3.1.1"
    ]
    assert proxy.refused == refused_before + 1  # it asked for v5 and stopped there
    assert runs == [] and not (tmp_path / "touched").exists()
