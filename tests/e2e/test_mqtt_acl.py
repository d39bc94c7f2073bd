"""contrib/mosquitto loaded into a real Mosquitto: logins, and the ACL refusing what it should."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.e2e.broker import Broker, mosquitto
from tests.e2e.mqtt_helpers import WAIT, request, retained, running_app, watcher
from tests.e2e.server import SYSMENU, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

CONTRIB = Path(__file__).parent.parent.parent / "contrib" / "mosquitto"


def secure_broker_extra(directory: Path) -> str:
    """contrib's conf, with the paths and port of this test (the listener comes from Broker)."""
    directory.mkdir(parents=True, exist_ok=True)
    passwd = directory / "sysmenu.passwd"
    shutil.copy(CONTRIB / "passwd.example", passwd)
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True, capture_output=True)
    assert "change-me" not in passwd.read_text()  # hashed in place
    shutil.copy(CONTRIB / "sysmenu.acl", directory / "sysmenu.acl")
    text = (CONTRIB / "sysmenu.conf").read_text()
    text = re.sub(r"^listener .*$", "", text, flags=re.M)
    return text.replace("/etc/mosquitto/", f"{directory}/")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path / "broker", secure_broker_extra(tmp_path / "etc")) as b:
        yield b


def host_config(broker: Broker, tmp: Path, password: str = "change-me-pi-1") -> str:
    (tmp / "pi-1.pw").write_text(password + "\n")
    mqtt = broker.mqtt_section(topic_prefix="sysmenu/pi-1", username="pi-1", password_file=tmp / "pi-1.pw")
    return f"""\
system:
  actions:
    - action: touch
      command: "echo $$ >> {tmp}/touched"
      mqtt: true
sysmenu:
{mqtt}"""


async def test_acl_refusals(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, host_config(broker, tmp_path)) as app:
        await app.online()
        async with (
            watcher(broker, username="fleet", password="change-me-fleet") as fleet,
            watcher(broker, username="nas", password="change-me-nas") as nas,
        ):
            # another host may not ask pi-1 to run anything, neither in its own name nor as the fleet
            await nas.publish("sysmenu/pi-1/request/custom/touch/nas", b"{}", qos=1)
            await nas.publish("sysmenu/pi-1/request/custom/touch/fleet", b"{}", qos=1)
            # the fleet may not speak for pi-1, nor ask in another's name
            await fleet.publish("sysmenu/pi-1/status", b"offline", qos=1, retain=True)
            await fleet.publish("sysmenu/pi-1/request/custom/touch/homeassistant", b"{}", qos=1)
            # ...but it may ask in its own name, and it reads the answer
            reply_to = "sysmenu/pi-1/response/fleet/1"
            answer = await request(fleet, "sysmenu/pi-1/request/custom/touch/fleet", reply_to=reply_to)
            found = await retained(fleet, "sysmenu/+/status", marker_root="sysmenu/_fleet/fleet")
        runs = app.store.runs.list()
    assert answer["state"] == "ok"
    assert [(r.user, r.auth) for r in runs] == [("fleet", "mqtt")]  # only the allowed request ran
    assert len((tmp_path / "touched").read_text().split()) == 1
    assert found == {"sysmenu/pi-1/status": b"online"}


async def test_wrong_or_no_credentials_are_refused_and_http_goes_on(broker: Broker, tmp_path: Path) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with watcher(broker):  # anonymous
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with watcher(broker, username="fleet", password="wrong"):
            pass
    async with running_app(tmp_path, host_config(broker, tmp_path, password="wrong")) as app:
        error = await app.refused()
        r = await app.client.post("/api/system/commands/custom/touch", headers={"X-Api-Key": app.key})
        assert r.status_code == 204
        assert app.link.connections == 0 and not app.link.connected.is_set()
    assert "not authori" in error.lower()
    assert "not authorised" in broker.output().lower() or "not authorized" in broker.output().lower()


async def test_a_host_whose_user_the_acl_does_not_fit_says_so(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # nas's own user and password, but pi-1's topics: the broker takes the login and refuses
    # every message; the host must not look fine while nothing it says arrives
    (tmp_path / "nas.pw").write_text("change-me-nas\n")
    mqtt = broker.mqtt_section(topic_prefix="sysmenu/pi-1", username="nas", password_file=tmp_path / "nas.pw")
    text = host_config(broker, tmp_path).split("sysmenu:\n")[0] + "sysmenu:\n" + mqtt
    async with running_app(tmp_path, text) as app:
        await app.online()
    refusals = [r.getMessage() for r in caplog.records if "refused this host's message" in r.getMessage()]
    assert refusals, caplog.text
    assert "'sysmenu/pi-1/status' (Not authorized)" in refusals[0]
    assert "user nas" in refusals[0] and "'pi-1'" in refusals[0]
    assert len(refusals) == 1  # rate-limited: one line, not one per message


async def fleet_cli(
    broker: Broker, tmp: Path, user: str, *args: str, password: bool = True
) -> tuple[int, str]:
    """The real `sysmenu fleet ...` as broker user `user` (password change-me-<user> in $FLEET_PW)."""
    mqtt = broker.mqtt_section(topic_prefix="sysmenu/controller", username=user, password_env="FLEET_PW")
    (tmp / f"{user}.yaml").write_text(f"sysmenu:\n{mqtt}")
    env = {k: v for k, v in os.environ.items() if k != "FLEET_PW"}
    if password:
        env["FLEET_PW"] = f"change-me-{user}"
    process = await asyncio.create_subprocess_exec(
        SYSMENU, "--config", str(tmp / f"{user}.yaml"), "--data-dir", str(tmp / "controller"), "fleet", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    async with asyncio.timeout(WAIT * 2):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_fleet_as_a_user_the_acl_does_not_allow_says_why(broker: Broker, tmp_path: Path) -> None:
    async with running_app(tmp_path, host_config(broker, tmp_path)) as app:
        await app.online()
        # Home Assistant's user may not list the fleet (it cannot write the controller's marker):
        # one line saying so, not an empty error after a wait
        code, output = await fleet_cli(broker, tmp_path, "homeassistant", "hosts")
        assert code == 1
        assert "refused this client's message on sysmenu/_fleet/homeassistant/sync (Not authorized)" in output
        # without its password variable, the CLI names the variable
        code, output = await fleet_cli(broker, tmp_path, "fleet", "hosts", password=False)
        assert code == 1 and "environment variable FLEET_PW (sysmenu.mqtt.password_env) is not set" in output
        # the fleet user may
        code, output = await fleet_cli(broker, tmp_path, "fleet", "hosts")
        assert code == 0 and "pi-1" in output
    assert "change-me" not in broker.output()


async def test_a_restarted_host_removes_the_states_of_commands_it_no_longer_offers(
    broker: Broker, tmp_path: Path
) -> None:
    async with running_app(tmp_path, host_config(broker, tmp_path)) as app:
        await app.online()
        r = await app.client.post("/api/system/commands/custom/touch", headers={"X-Api-Key": app.key})
        assert r.status_code == 204
        async with watcher(broker, username="fleet", password="change-me-fleet") as fleet:
            for _ in range(500):  # its state reached the broker
                found = await retained(fleet, "sysmenu/pi-1/state/#", marker_root="sysmenu/_fleet/fleet")
                if found:
                    break
    assert list(found) == ["sysmenu/pi-1/state/custom/touch"]
    async with watcher(broker, username="fleet", password="change-me-fleet") as fleet:
        # restarted without `touch` on MQTT: under contrib's ACL it reads its own states back
        later = host_config(broker, tmp_path).replace("mqtt: true", "mqtt: false")
        async with running_app(tmp_path, later, name="later") as app:
            await app.online()
            for _ in range(500):
                found = await retained(fleet, "sysmenu/pi-1/state/#", marker_root="sysmenu/_fleet/fleet")
                if not found:
                    break
    assert found == {}


async def test_doctor_checks_the_broker_login(broker: Broker, tmp_path: Path) -> None:
    async def doctor(password: str) -> tuple[int, str]:
        config = tmp_path / f"{password}.yaml"
        config.write_text(host_config(broker, tmp_path, password) + f"  port: {free_port()}\n")
        process = await asyncio.create_subprocess_exec(
            SYSMENU, "--config", str(config), "--data-dir", str(tmp_path / "data"), "doctor",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        async with asyncio.timeout(WAIT * 2):
            out, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode()

    code, good = await doctor("change-me-pi-1")
    assert code == 0, good
    assert re.search(rf"mqtt broker 127\.0\.0\.1:{broker.port} +yes +logged in as pi-1", good)
    code, bad = await doctor("wrong")
    assert code == 1
    assert re.search(rf"mqtt broker 127\.0\.0\.1:{broker.port} +NO +\[code:135\] Not authorized", bad)
    assert "wrong" not in bad.replace("wrong.yaml", "")  # the password is not shown
