"""`sysmenu fleet` against several sysmenu hosts on one real Mosquitto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.e2e.broker import Broker, mosquitto
from tests.e2e.mqtt_helpers import App, fleet, next_message, running_app, watcher
from tests.e2e.server import SYSMENU

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path / "broker") as b:
        yield b


def host_config(broker: Broker, tmp: Path, name: str, offers: bool = True) -> str:
    return f"""\
system:
  actions:
    - action: hello
      command: "echo hello from {name}; touch {tmp}/{name}.ran"
      mqtt: {str(offers).lower()}
    - action: fail
      command: "echo broken on {name} >&2; exit 4"
      mqtt: true
sysmenu:
{broker.mqtt_section(topic_prefix=f"sysmenu/{name}")}"""


@asynccontextmanager
async def fleet_of(broker: Broker, tmp: Path, names: dict[str, bool]) -> AsyncIterator[list[App]]:
    async with AsyncExitStack() as stack:
        apps = [
            await stack.enter_async_context(running_app(tmp, host_config(broker, tmp, n, o), name=n))
            for n, o in names.items()
        ]
        for app in apps:
            await app.online()
        yield apps


async def a_dead_host(broker: Broker, name: str, status: bytes) -> None:
    """Retained messages of a host that is not running (it said online and never left)."""
    document = {"host": name, "version": "0.0.1", "url": None, "commands": []}
    async with watcher(broker) as w:
        await w.publish(f"sysmenu/{name}/status", status, qos=1, retain=True)
        await w.publish(f"sysmenu/{name}/device", json.dumps(document).encode(), qos=1, retain=True)


async def test_fleet_hosts_lists_every_host(broker: Broker, tmp_path: Path) -> None:
    async with fleet_of(broker, tmp_path, {"pi-1": True, "nas": False}):
        await a_dead_host(broker, "camera", b"offline")
        code, out, _ = await fleet(broker, tmp_path, "hosts", "--json")
        _, table, _ = await fleet(broker, tmp_path, "hosts")
    assert code == 0
    hosts: list[dict[str, Any]] = json.loads(out)
    assert [(h["name"], h["online"]) for h in hosts] == [("camera", False), ("nas", True), ("pi-1", True)]
    commands = {h["name"]: [c["action"] for c in h["commands"]] for h in hosts}
    assert commands == {"camera": [], "nas": ["fail"], "pi-1": ["hello", "fail"]}
    assert all(h["version"] for h in hosts)
    lines = table.splitlines()
    assert lines[0].split() == ["HOST", "ONLINE", "VERSION", "COMMANDS"]
    assert lines[3].split()[:2] == ["pi-1", "yes"]


async def test_fleet_run_on_a_glob_and_on_all(broker: Broker, tmp_path: Path) -> None:
    async with fleet_of(broker, tmp_path, {"pi-1": True, "pi-2": True, "nas": False}) as apps:
        code, out, err = await fleet(broker, tmp_path, "run", "custom", "hello", "--hosts", "pi-*", "--json")
        results = json.loads(out)
        assert code == 0, err
        assert [(r["host"], r["state"], r["returncode"]) for r in results] == [
            ("pi-1", "ok", 0),
            ("pi-2", "ok", 0),
        ]
        assert results[0]["output"] == "hello from pi-1\n"
        assert (tmp_path / "pi-1.ran").exists() and not (tmp_path / "nas.ran").exists()
        run = apps[0].store.runs.get(results[0]["run"])
        assert run is not None and (run.user, run.auth) == ("fleet", "mqtt")

        code, table, err = await fleet(broker, tmp_path, "run", "custom", "fail", "--all")
        assert code == 1  # not every host succeeded
        rows = [line.split() for line in table.splitlines()]
        assert rows[0] == ["HOST", "STATE", "EXIT", "DURATION", "OUTPUT"]
        assert [r[:3] for r in rows[1:]] == [
            ["nas", "failed", "4"],
            ["pi-1", "failed", "4"],
            ["pi-2", "failed", "4"],
        ]
        assert rows[1][-3:] == ["broken", "on", "nas"]
        assert "running custom:fail on 3 host(s)" in err and "pi-2: failed" in err


async def test_hosts_that_cannot_answer_are_listed_as_such(broker: Broker, tmp_path: Path) -> None:
    offers_nothing = "system:\n  actions:\n    - {action: hello, command: 'true'}\nsysmenu:\n"
    offers_nothing += broker.mqtt_section(topic_prefix="sysmenu/kiosk")
    async with (
        fleet_of(broker, tmp_path, {"pi-1": True, "nas": False}),
        running_app(tmp_path, offers_nothing, name="kiosk") as kiosk,
    ):
        await kiosk.online()
        await a_dead_host(broker, "pi-ghost", b"online")  # says online, never answers
        await a_dead_host(broker, "pi-gone", b"offline")
        code, out, _ = await fleet(
            broker, tmp_path, "run", "custom", "hello", "--all", "--timeout", "1", "--json"
        )
    states = {r["host"]: r["state"] for r in json.loads(out)}
    assert states == {
        "kiosk": "not offered",  # it offers no command at all
        "nas": "not offered",
        "pi-1": "ok",
        "pi-ghost": "no answer",
        "pi-gone": "offline",
    }
    assert code == 1


async def test_fleet_needs_a_broker_and_a_choice_of_hosts(broker: Broker, tmp_path: Path) -> None:
    code, _, err = await fleet(broker, tmp_path, "run", "custom", "hello")
    assert code == 2 and "--hosts GLOB or --all" in err
    code, _, err = await fleet(broker, tmp_path, "run", "custom", "hello", "--hosts", "x*")
    assert code == 1 and "no host matches 'x*'" in err
    broker.stop()
    code, _, err = await fleet(broker, tmp_path, "hosts")
    assert code == 1 and f"MQTT broker 127.0.0.1:{broker.port}" in err
    (tmp_path / "plain.yaml").write_text("")
    process = await asyncio.create_subprocess_exec(
        SYSMENU, "--config", str(tmp_path / "plain.yaml"), "fleet", "hosts", stderr=asyncio.subprocess.PIPE
    )
    _, plain_err = await process.communicate()
    assert process.returncode == 1 and b"no broker configured" in plain_err


async def test_a_request_the_broker_refuses_is_listed_as_refused(tmp_path: Path) -> None:
    # an ACL that lets everyone see the fleet but nobody ask a host to run anything
    acl = tmp_path / "acl"
    acl.write_text(
        "topic read sysmenu/#\ntopic write sysmenu/_fleet/#\ntopic write sysmenu/+/status\n"
        "topic write sysmenu/+/device\ntopic write sysmenu/+/state/#\ntopic write sysmenu/+/event/#\n"
    )
    with mosquitto(tmp_path / "broker", f"acl_file {acl}\n") as broker:
        async with fleet_of(broker, tmp_path, {"pi-1": True}):
            code, out, err = await fleet(
                broker, tmp_path, "run", "custom", "hello", "--all", "--timeout", "60"
            )
    assert code == 1
    assert out.split("\n")[1].split() == ["pi-1", "refused", "-", "-", "the", "broker", "refused", "the",
                                          "request", "(Not", "authorized)"]  # fmt: skip
    assert "pi-1: refused" in err  # shown as it happened, not after --timeout
    assert not (tmp_path / "pi-1.ran").exists()


async def test_fleet_run_passes_arguments_each_host_checks(broker: Broker, tmp_path: Path) -> None:
    def host(name: str, most: int) -> str:
        return (
            "system:\n  actions:\n    - action: restart\n"
            f"      command: 'echo restarting $1 on {name}'\n      mqtt: true\n"
            f"      arguments:\n        - {{name: unit, type: choice, choices: [nginx, cups]}}\n"
            f"        - {{name: delay, type: int, max: {most}, default: 0}}\n"
            f"sysmenu:\n{broker.mqtt_section(topic_prefix=f'sysmenu/{name}')}"
        )

    async with (
        running_app(tmp_path, host("pi-1", 10), name="pi-1") as one,
        running_app(tmp_path, host("pi-2", 5), name="pi-2") as two,
    ):
        await one.online()
        await two.online()
        args = ("--all", "--json", "--arg", "unit=nginx", "--arg", "delay=7")
        code, out, _ = await fleet(broker, tmp_path, "run", "custom", "restart", *args)
        results = {r["host"]: r for r in json.loads(out)}
        code_missing, out_missing, _ = await fleet(
            broker, tmp_path, "run", "custom", "restart", "--all", "--json"
        )
    assert code == 1  # pi-2 allows 5 at most
    assert results["pi-1"]["state"] == "ok" and results["pi-1"]["output"] == "restarting nginx on pi-1\n"
    assert results["pi-2"]["state"] == "refused"
    assert results["pi-2"]["error"] == "Invalid arguments: delay should be at most 5"
    assert code_missing == 1
    assert {r["error"] for r in json.loads(out_missing)} == {"Invalid arguments: unit is required"}


async def test_what_other_hosts_publish_cannot_break_the_cli(broker: Broker, tmp_path: Path) -> None:
    garbage = {
        "version": 5,
        "url": [1],
        "commands": [{"source": 1, "action": None}, "x", {"source": "custom"}],
    }
    async with watcher(broker) as w:
        await w.publish("sysmenu/odd/status", b"offline", qos=1, retain=True)
        await w.publish("sysmenu/odd/device", json.dumps(garbage).encode(), qos=1, retain=True)
        await w.publish("sysmenu/odder/device", b"[1, 2]", qos=1, retain=True)
        await w.publish("sysmenu/liar/status", b"online", qos=1, retain=True)
        # a host that answers with every field of the wrong type
        await w.subscribe("sysmenu/liar/request/#", qos=1)
        running = asyncio.create_task(
            fleet(broker, tmp_path, "run", "custom", "x", "--all", "--timeout", "30")
        )
        message = await next_message(w, "sysmenu/liar/request/#")
        assert message.properties is not None
        answer = {"state": 5, "returncode": "x", "duration": "slow", "output": 7, "id": [1]}
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.CorrelationData = message.properties.CorrelationData
        await w.publish(
            message.properties.ResponseTopic, json.dumps(answer).encode(), qos=1, properties=properties
        )
        code, table, err = await running
    assert code == 1, err
    rows = [line.split() for line in table.splitlines()]
    assert rows[1:] == [
        ["liar", "5", "-", "-"],
        ["odd", "offline", "-", "-"],
        ["odder", "offline", "-", "-"],
    ]
    code, out, err = await fleet(broker, tmp_path, "hosts")
    assert code == 0, err
    assert [line.split() for line in out.splitlines()][1:] == [
        ["liar", "yes", "-", "-"],
        ["odd", "no", "-", "-"],
        ["odder", "no", "-", "-"],
    ]
