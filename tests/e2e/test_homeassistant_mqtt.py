"""A real Home Assistant (2024.3.3) on the same Mosquitto as a real sysmenu server: its MQTT
integration discovers the sysmenu device and its buttons, a button pressed through Home
Assistant's service call runs the command, and the device goes unavailable when sysmenu dies."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.broker import Broker, mosquitto
from tests.e2e.homeassistant import homeassistant_python
from tests.e2e.server import free_port, running_server

pytestmark = pytest.mark.e2e

DRIVER = Path(__file__).parent / "ha_mqtt_driver.py"
MQTT_REQUIREMENTS = ("paho-mqtt==1.6.1", "janus==1.0.0")  # the MQTT integration and its file_upload
TIMEOUT = 60.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path / "broker") as b:
        yield b


def ha_config_dir(directory: Path, broker: Broker) -> Path:
    """A Home Assistant config dir whose only configured integration is MQTT on `broker`."""
    storage = directory / ".storage"
    storage.mkdir(parents=True)
    (directory / "configuration.yaml").write_text(
        "homeassistant:\n  name: sysmenu test\n  latitude: 0\n  longitude: 0\n  elevation: 0\n"
        "  unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: DE\n"
        f"http:\n  server_host: 127.0.0.1\n  server_port: {free_port()}\n"
        "logger:\n  default: error\n  logs:\n    homeassistant.components.mqtt: info\n"
    )
    entry = {
        "entry_id": "sysmenutestmqttentry",
        "version": 1,
        "minor_version": 1,
        "domain": "mqtt",
        "title": "Mosquitto",
        "data": {"broker": "127.0.0.1", "port": broker.port, "discovery": True},
        "options": {},
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "unique_id": None,
        "disabled_by": None,
    }
    entries = {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}
    (storage / "core.config_entries").write_text(json.dumps(entries))
    return directory


def read_event(driver: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    assert driver.stdout is not None
    line = driver.stdout.readline()
    if not line:
        driver.wait(30)
        raise AssertionError(f"Home Assistant ended ({driver.returncode}):\n{log.read_text()[-5000:]}")
    event: dict[str, Any] = json.loads(line)
    return event


def test_home_assistant_discovers_sysmenu_and_presses_its_button(broker: Broker, tmp_path: Path) -> None:
    python = homeassistant_python(MQTT_REQUIREMENTS)
    config = f"""\
system:
  actions:
    - action: touch
      name: Touch a file
      command: "touch {tmp_path}/pressed"
      mqtt: true
    - action: private
      command: "true"
sysmenu:
{broker.mqtt_section(topic_prefix="sysmenu/pi-1", configuration_url="http://pi-1.lan:5000/")}"""
    ha_dir = ha_config_dir(tmp_path / "ha", broker)
    log = tmp_path / "ha.log"
    with running_server(tmp_path / "server", config) as server, log.open("w") as err:
        driver = subprocess.Popen(
            [
                str(python),
                "-P",  # not this directory on sys.path: its homeassistant.py is not Home Assistant
                str(DRIVER),
                str(ha_dir),
                "sysmenu_pi-1",
                "sysmenu_pi-1_custom_touch",
                str(TIMEOUT),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            discovered = read_event(driver, log)
            pressed = read_event(driver, log)
            last_run = read_event(driver, log)
            assert (tmp_path / "pressed").exists()
            with server.client() as http:
                (run,) = http.get("/api/runs").json()["runs"]
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
            assert driver.stdin is not None
            driver.stdin.write("watch-offline\n")
            driver.stdin.flush()
            unavailable = read_event(driver, log)
            driver.wait(TIMEOUT)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait(10)
            for pipe in (driver.stdin, driver.stdout):
                if pipe is not None:
                    pipe.close()
    assert discovered["device"]["name"] == "pi-1"
    assert discovered["device"]["configuration_url"] == "http://pi-1.lan:5000/"
    assert discovered["device"]["sw_version"] and discovered["device"]["manufacturer"] == "sysmenu"
    assert discovered["entities"] == ["button.pi_1_custom_touch", "sensor.pi_1_custom_touch_last_run"]
    assert discovered["button_state"] == "unknown"  # available, never pressed
    assert pressed["button"] == "button.pi_1_custom_touch"
    assert last_run["state"] == "ok" and last_run["attributes"]["returncode"] == 0
    assert (run["user"], run["auth"], run["state"]) == ("homeassistant", "mqtt", "ok")
    assert last_run["attributes"]["id"] == run["id"]
    assert unavailable["event"] == "unavailable"
