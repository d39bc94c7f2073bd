"""sysmenu on a real Mosquitto: discovery, availability, button presses, v5 request/response,
reconnecting, and HTTP untouched by the broker's troubles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sysmenu.config import parse
from sysmenu.store import Store
from tests.e2e.broker import Broker, mosquitto
from tests.e2e.mqtt_helpers import WAIT, last_will, next_message, request, retained, running_app, watcher
from tests.e2e.server import Server, free_port, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

PREFIX = "sysmenu/pi-1"


def config(
    broker: Broker | None,
    tmp: Path,
    expose: str = "marked",
    extra: str = "",
    port: int = 0,
    fail: str = "true",
) -> str:
    mqtt = (
        broker.mqtt_section(topic_prefix=PREFIX, expose=expose, configuration_url="http://pi-1.lan:5000/")
        if broker
        else f"  mqtt:\n    host: 127.0.0.1\n    port: {port}\n    topic_prefix: {PREFIX}\n"
    )
    return f"""\
server:
  commands:
    systemShutdownCommand: "touch {tmp}/shutdown"
system:
  actions:
    - action: touch
      name: Touch a file
      command: "touch {tmp}/touched"
      mqtt: true
    - action: fail
      name: Fail
      command: "echo bad >&2; exit 5"
      mqtt: {fail}
    - action: private
      name: Not on MQTT
      command: "touch {tmp}/private"
    - action: fresh
      name: Needs a password
      command: "true"
      fresh_credentials: true
{extra}
sysmenu:
{mqtt}"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path / "broker") as b:
        yield b


async def test_discovery_describes_the_device_its_buttons_and_sensors(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
        async with watcher(broker) as w:
            found = await retained(w, "homeassistant/#", f"{PREFIX}/#")
    assert found[f"{PREFIX}/status"] == b"online"
    device = json.loads(found[f"{PREFIX}/device"])
    assert device["host"] == "pi-1" and device["url"] == "http://pi-1.lan:5000/"
    assert [c["action"] for c in device["commands"]] == ["touch", "fail"]
    button = json.loads(found["homeassistant/button/pi-1/custom_touch/config"])
    assert button["command_topic"] == f"{PREFIX}/request/custom/touch/homeassistant"
    assert button["payload_press"] == "PRESS" and button["name"] == "Touch a file"
    assert button["availability_topic"] == f"{PREFIX}/status"
    assert button["device"]["identifiers"] == ["sysmenu_pi-1"]
    assert button["device"]["configuration_url"] == "http://pi-1.lan:5000/"
    assert button["device"]["sw_version"]
    sensor = json.loads(found["homeassistant/sensor/pi-1/custom_fail_last_run/config"])
    assert sensor["state_topic"] == f"{PREFIX}/state/custom/fail"
    assert sensor["value_template"] == "{{ value_json.state }}"
    configs = [t for t in found if t.startswith("homeassistant/")]
    assert len(configs) == 4  # touch and fail; not the unmarked, not the fresh-credentials one


async def test_expose_all_leaves_out_fresh_credentials_unless_marked(broker: Broker, tmp_path: Path) -> None:
    extra = (
        "    - action: marked_fresh\n      command: 'true'\n      fresh_credentials: true\n      mqtt: true\n"
    )
    async with running_app(tmp_path, config(broker, tmp_path, expose="all", extra=extra)) as app:
        await app.online()
        async with watcher(broker) as w:
            found = await retained(w, f"{PREFIX}/device")
    actions = [c["action"] for c in json.loads(found[f"{PREFIX}/device"])["commands"]]
    assert actions == ["touch", "fail", "private", "marked_fresh"]  # not core shutdown, not `fresh`


async def test_button_press_runs_the_command_and_is_recorded(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
        async with watcher(broker) as w:
            await w.subscribe(f"{PREFIX}/event/custom/touch", qos=1)
            await w.publish(f"{PREFIX}/request/custom/touch/homeassistant", b"PRESS", qos=1)
            start = json.loads(bytes((await next_message(w, f"{PREFIX}/event/#")).payload))  # type: ignore[arg-type]
            end = json.loads(bytes((await next_message(w, f"{PREFIX}/event/#")).payload))  # type: ignore[arg-type]
            found = await retained(w, f"{PREFIX}/state/#")
        assert (tmp_path / "touched").exists()
        runs = app.store.runs.list()
        audit = app.store.audit.list()
    assert start["event"] == "start" and end["event"] == "end" and end["state"] == "ok"
    assert end["host"] == "pi-1" and end["returncode"] == 0
    state = json.loads(found[f"{PREFIX}/state/custom/touch"])
    assert state["state"] == "ok" and state["id"] == runs[0].id
    # the sensor's attributes: times people can read too (ISO 8601, UTC)
    ended = datetime.fromisoformat(state["ended_at"])
    assert ended.utcoffset() == timedelta(0) and abs(ended.timestamp() - state["ended"]) < 1
    assert state["started_at"] <= state["ended_at"]
    assert (runs[0].user, runs[0].auth) == ("homeassistant", "mqtt")
    assert runs[0].client == f"mqtt://127.0.0.1:{broker.port}"
    executed = [a for a in audit if a["event"] == "execute"]
    assert executed and (executed[0]["user"], executed[0]["auth"]) == ("homeassistant", "mqtt")


async def test_v5_request_gets_its_answer_with_correlation_data(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
        async with watcher(broker) as w:
            failed = await request(w, f"{PREFIX}/request/custom/fail/alice")
            hidden = await request(w, f"{PREFIX}/request/custom/private/alice")
            unknown = await request(w, f"{PREFIX}/request/custom/nope/alice")
            fresh = await request(w, f"{PREFIX}/request/core/shutdown/alice")
            malformed = await request(w, f"{PREFIX}/request/custom/touch/alice", b"[1, 2")
            spaced = await request(w, f"{PREFIX}/request/custom/touch/a b")
            long = await request(w, f"{PREFIX}/request/custom/touch/{'x' * 65}")
            huge = await request(w, f"{PREFIX}/request/custom/touch/alice", b'{"a": "%s"}' % (b"x" * 200_000))
        runs = app.store.runs.list()
    assert failed["host"] == "pi-1" and failed["state"] == "failed" and failed["returncode"] == 5
    assert failed["output"] == "bad\n" and failed["id"] == runs[0].id
    assert runs[0].user == "alice" and len(runs) == 1
    assert hidden["status"] == unknown["status"] == fresh["status"] == 404
    assert malformed["status"] == 400 and "error" in malformed
    assert spaced["status"] == long["status"] == 400 and "invalid user name 'a b'" in spaced["error"]
    assert huge["status"] == 413 and huge["error"] == "Request body too large"  # as over HTTP
    assert not (tmp_path / "private").exists() and not (tmp_path / "shutdown").exists()
    assert not (tmp_path / "touched").exists()


async def test_an_answer_cannot_be_asked_on_the_hosts_own_topics(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
        async with watcher(broker) as w:
            for reply_to in (
                f"{PREFIX}/request/custom/fail/mallory",  # its answer would be a request as mallory
                f"{PREFIX}/status",
                f"{PREFIX}/state/custom/touch",
                "homeassistant/button/pi-1/x/config",
            ):
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                properties.ResponseTopic = reply_to
                await w.publish(f"{PREFIX}/request/custom/touch/alice", b"{}", qos=1, properties=properties)
            # requests are handled in order: once this one is answered, those were dropped
            answer = await request(
                w, f"{PREFIX}/request/custom/fail/bob", reply_to=f"{PREFIX}/response/bob/1"
            )
        runs = app.store.runs.list()
    assert answer["state"] == "failed"
    assert [(r.action, r.user) for r in runs] == [("fail", "bob")]


async def test_arguments_are_checked_as_over_http(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    extra = (
        "    - action: greet\n"
        f"      command: 'echo \"hello $1\" > {tmp_path}/greeted'\n"
        "      mqtt: true\n"
        "      arguments:\n"
        "        - {name: count, type: int, min: 1, max: 3}\n"
        "    - action: wave\n"
        "      command: 'true'\n"
        "      mqtt: true\n"
        "      arguments:\n"
        "        - {name: times, type: int, default: 1}\n"
    )
    caplog.set_level(logging.INFO, logger="sysmenu.mqtt")
    topic = f"{PREFIX}/request/custom/greet/alice"
    async with running_app(tmp_path, config(broker, tmp_path, extra=extra)) as app:
        await app.online()
        async with watcher(broker) as w:
            found = await retained(w, "homeassistant/+/pi-1/+/config")
            # a press carries no values: no button for a command whose argument is required
            assert "homeassistant/button/pi-1/custom_greet/config" not in found
            assert "homeassistant/sensor/pi-1/custom_greet_last_run/config" in found
            assert "homeassistant/button/pi-1/custom_wave/config" in found  # its argument has a default
            good = await request(w, topic, b'{"arguments": {"count": 2}}')
            greeted = (tmp_path / "greeted").read_text()
            bad = await request(w, topic, b'{"arguments": {"count": 9, "other": 1}}')
            missing = await request(w, topic, b"PRESS")
            # as `sysmenu run --arg` (what `sysmenu fleet run --arg` sends): typed by the host
            as_text = await request(w, topic, b'{"args": ["count=3"]}')
            greeted_as_text = (tmp_path / "greeted").read_text()
            bad_text = await request(w, topic, b'{"args": ["count=three"]}')
            not_a_list = await request(w, topic, b'{"args": "count=3"}')
            no_arguments = await request(w, f"{PREFIX}/request/custom/touch/alice", b'{"args": ["x=1"]}')
        http = await app.client.post(
            "/api/system/commands/custom/greet",
            headers={"X-Api-Key": app.key},
            json={"arguments": {"count": 9, "other": 1}},
        )
        runs = app.store.runs.list()
    assert good["state"] == "ok" and greeted == "hello 2\n"
    assert http.status_code == bad["status"] == 400
    assert bad["error"] == http.json()["error"]
    assert missing["status"] == 400 and "count" in missing["error"]
    assert as_text["state"] == "ok" and greeted_as_text == "hello 3\n"
    assert (
        bad_text["status"] == 400 and bad_text["error"] == "Invalid arguments: count should be a whole number"
    )
    assert not_a_list["status"] == 400 and "NAME=VALUE" in not_a_list["error"]
    assert no_arguments["status"] == 400 and "custom:touch takes no arguments" in no_arguments["error"]
    assert len(runs) == 2  # the refused requests ran nothing
    refusals = [r for r in caplog.records if "refused: Invalid arguments" in r.getMessage()]
    assert len(refusals) == 1  # five bad requests, one line: a flood of them does not flood the log


async def test_a_busy_command_is_refused_over_mqtt_as_over_http(broker: Broker, tmp_path: Path) -> None:
    wait = f"while [ ! -e {tmp_path}/go ]; do sleep 0.02; done"
    # queue: false asks for 409 when busy (a command that says nothing queues, as OctoPrint's clients need)
    extra = f"    - action: slow\n      command: '{wait}'\n      mqtt: true\n      queue: false\n"
    async with running_app(tmp_path, config(broker, tmp_path, extra=extra)) as app:
        await app.online()
        r = await app.client.post(
            "/api/system/commands/custom/slow", headers={"X-Api-Key": app.key, "Prefer": "respond-async"}
        )
        assert r.status_code == 202
        async with watcher(broker) as w:
            busy = await request(w, f"{PREFIX}/request/custom/slow/alice")
        (tmp_path / "go").touch()
    assert busy["status"] == 409 and "already running" in busy["error"]


async def test_reconnects_after_a_broker_restart_and_sends_what_queued_up(
    broker: Broker, tmp_path: Path
) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
        broker.stop()
        await app.offline()
        # a run while the broker is away: HTTP works, its result waits in the outbox
        r = await app.client.post("/api/system/commands/custom/fail", headers={"X-Api-Key": app.key})
        assert r.status_code == 500
        assert app.link.outbox
        away = (await app.client.get("/api/status", headers={"X-Api-Key": app.key})).json()["mqtt"]
        broker.start()
        await app.online(connections=2)
        back = (await app.client.get("/api/status", headers={"X-Api-Key": app.key})).json()["mqtt"]
        async with watcher(broker) as w:
            found = await retained(w, f"{PREFIX}/#", "homeassistant/#")
            answer = await request(w, f"{PREFIX}/request/custom/touch/alice")
    assert found[f"{PREFIX}/status"] == b"online"  # announced again (the broker kept nothing)
    assert "homeassistant/button/pi-1/custom_touch/config" in found
    assert json.loads(found[f"{PREFIX}/state/custom/fail"])["returncode"] == 5  # sent after reconnecting
    assert answer["state"] == "ok"
    # GET /api/status says how the link is doing
    assert away["broker"] == f"127.0.0.1:{broker.port}" and away["prefix"] == PREFIX
    assert away["connected"] is False and away["last_error"] and away["queued"] >= 1
    assert back["connected"] is True and back["protocol"] == "5" and back["dropped"] == 0


async def test_two_hosts_with_one_client_id_are_told_apart_and_slow_down(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # two hosts with the same name (a cloned SD card): the broker drops one for the other at
    # each connection; they must not take turns every second forever without saying why
    caplog.set_level(logging.DEBUG, logger="sysmenu.mqtt")
    text = config(broker, tmp_path)
    async with running_app(tmp_path, text, name="one"), running_app(tmp_path, text, name="twin"):
        async with asyncio.timeout(WAIT):
            while not [r for r in caplog.records if "keep ending soon" in r.getMessage()]:
                await asyncio.sleep(0.05)
    (said, *_) = [r for r in caplog.records if "keep ending soon" in r.getMessage()]
    assert said.levelno == logging.WARNING
    assert "client id, sysmenu-pi-1 (a second host with the same name" in said.getMessage()
    waits = re.findall(r"\(retrying in about (\d+) s\)$", said.getMessage())
    assert waits and int(waits[0]) >= 2  # the backoff did not start over at each connection


async def test_after_reconnecting_online_comes_before_what_queued_up(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
        async with watcher(broker) as w:
            await w.subscribe([(f"{PREFIX}/status", 1), (f"{PREFIX}/event/#", 1)])
            assert (await next_message(w, f"{PREFIX}/status")).payload == b"online"  # the retained one
            # another client takes the host's client id: the broker drops the host's connection
            with contextlib.suppress(aiomqtt.MqttError):  # the host may take it back first
                async with aiomqtt.Client("127.0.0.1", broker.port, identifier="sysmenu-pi-1"):
                    await app.offline()
                    r = await app.client.post(
                        "/api/system/commands/custom/fail", headers={"X-Api-Key": app.key}
                    )
                    assert r.status_code == 500
            seen: list[bytes] = []
            async with asyncio.timeout(WAIT):
                async for message in w.messages:
                    payload = bytes(message.payload)  # type: ignore[arg-type]
                    seen.append(
                        payload
                        if payload in (b"online", b"offline")
                        else json.loads(payload)["event"].encode()
                    )
                    if seen[-1] == b"end":
                        break
    # a dashboard sees the host online again before the results it sends on coming back
    assert b"online" in seen and seen.index(b"online") < seen.index(b"start"), seen


async def test_http_is_untouched_when_no_broker_answers(tmp_path: Path) -> None:
    async with running_app(tmp_path, config(None, tmp_path, port=free_port())) as app:
        r = await app.client.post("/api/system/commands/custom/touch", headers={"X-Api-Key": app.key})
        assert r.status_code == 204 and (tmp_path / "touched").exists()
        assert not app.link.connected.is_set()
        # its last state (the "running" one was superseded) and both events wait for the broker
        assert [json.loads(o.payload).get("event") for o in app.link.outbox] == ["start", None, "end"]


async def test_a_command_that_leaves_the_config_loses_its_entities(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, config(broker, tmp_path, expose="all")) as app:
        await app.online()
        async with watcher(broker) as w:
            assert len(await retained(w, "homeassistant/#")) == 6  # touch, fail, private
    # the next server offers only `touch`: the entities an earlier run left are removed
    async with running_app(tmp_path, config(broker, tmp_path, fail="false"), name="later") as app:
        await app.online()
        async with watcher(broker) as w:
            for _ in range(500):  # the removal follows the retained messages the server is sent
                found = await retained(w, "homeassistant/#")
                if len(found) == 2:
                    break
        assert sorted(found) == [
            "homeassistant/button/pi-1/custom_touch/config",
            "homeassistant/sensor/pi-1/custom_touch_last_run/config",
        ]
        # and a config reload removes them at once
        app.state.apply(parse(config(broker, tmp_path).replace("mqtt: true", "mqtt: false"), "c.yaml"))
        async with watcher(broker) as w:
            for _ in range(500):
                found = await retained(w, "homeassistant/#")
                if not found:
                    break
        assert found == {}


async def test_discovery_turned_off_removes_the_entities_published_before(
    broker: Broker, tmp_path: Path
) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
    async with watcher(broker) as w:
        assert len(await retained(w, "homeassistant/#")) == 4
        async with running_app(
            tmp_path, config(broker, tmp_path) + "    discovery: false\n", name="off"
        ) as app:
            await app.online()
            for _ in range(500):
                found = await retained(w, "homeassistant/#", f"{PREFIX}/status")
                if len(found) == 1:
                    break
    assert found == {f"{PREFIX}/status": b"online"}  # no entities left, the host still there


async def test_a_command_that_leaves_the_config_takes_its_last_state_along(
    broker: Broker, tmp_path: Path
) -> None:
    hold = f"""\
    - action: hold
      command: "while [ ! -e {tmp_path}/go ]; do sleep 0.05; done"
      mqtt: true
"""
    async with running_app(tmp_path, config(broker, tmp_path, extra=hold)) as app:
        await app.online()
        r = await app.client.post("/api/system/commands/custom/fail", headers={"X-Api-Key": app.key})
        assert r.status_code == 500
        async with watcher(broker) as w:
            await w.subscribe(f"{PREFIX}/event/custom/hold", qos=1)
            await w.publish(f"{PREFIX}/request/custom/hold/alice", b"", qos=1)
            assert json.loads(bytes((await next_message(w, "#")).payload))["event"] == "start"  # type: ignore[arg-type]
            for _ in range(500):
                found = await retained(w, f"{PREFIX}/state/#")
                if len(found) == 2:
                    break
            assert sorted(found) == [f"{PREFIX}/state/custom/fail", f"{PREFIX}/state/custom/hold"]
            # both leave the config while `hold` still runs: their retained states go too
            app.state.apply(parse(config(broker, tmp_path, fail="false"), "c.yaml"))
            for _ in range(500):
                found = await retained(w, f"{PREFIX}/state/#")
                if not found:
                    break
            assert found == {}
            # the run goes on and ends (its event says so) without bringing its state back
            (tmp_path / "go").touch()
            end = await next_message(w, f"{PREFIX}/event/custom/hold")
            assert json.loads(bytes(end.payload))["event"] == "end"  # type: ignore[arg-type]
            assert await retained(w, f"{PREFIX}/state/#") == {}


async def test_discovery_is_sent_again_when_home_assistant_comes_online(
    broker: Broker, tmp_path: Path
) -> None:
    async with running_app(tmp_path, config(broker, tmp_path)) as app:
        await app.online()
        async with watcher(broker) as w:
            await w.subscribe("homeassistant/button/#", qos=1)
            await w.publish("homeassistant/status", b"online", qos=1)
            message = await next_message(w, "homeassistant/button/#")
    assert json.loads(bytes(message.payload))["payload_press"] == "PRESS"  # type: ignore[arg-type]


def test_availability_goes_offline_by_last_will_when_the_server_is_killed(
    broker: Broker, tmp_path: Path
) -> None:
    import asyncio

    async def watch(server: Server) -> tuple[bytes, bytes]:
        async with watcher(broker) as w:
            return await last_will(w, server, PREFIX)

    with running_server(tmp_path / "server", config(broker, tmp_path)) as server:
        will, kept = asyncio.run(watch(server))
        server.process.wait(10)
    assert will == kept == b"offline"


def test_without_mqtt_no_mqtt_library_is_loaded(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from sysmenu.app import create_app\n"
        "from sysmenu.config import parse\n"
        "from sysmenu.store import Store\n"
        f"create_app(parse(''), Store({str(tmp_path / 'db')!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiomqtt', 'paho')"
        " or m == 'sysmenu.mqtt'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    Store(tmp_path / "db").close()
