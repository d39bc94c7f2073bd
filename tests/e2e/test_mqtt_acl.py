"""contrib/mosquitto loaded into a real Mosquitto: logins, and the ACL refusing what it should."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests.e2e.broker import Broker, mosquitto
from tests.e2e.mqtt_helpers import request, retained, running_app, watcher

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
