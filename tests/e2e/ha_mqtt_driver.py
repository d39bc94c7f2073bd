"""Run inside Home Assistant's venv (not sysmenu's): boot a real Home Assistant whose MQTT
integration is connected to the test's broker, wait for the sysmenu device's entities,
press a button through Home Assistant's service call, and report as JSON lines on stdout.

usage: python -P ha_mqtt_driver.py CONFIG_DIR DEVICE_IDENTIFIER BUTTON_UNIQUE_ID TIMEOUT
"""

import asyncio
import json
import sys

from homeassistant import bootstrap, core, loader
from homeassistant import config as conf_util
from homeassistant.helpers import device_registry, entity_registry


def report(**data: object) -> None:
    print(json.dumps(data), flush=True)


async def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.05)


async def start(config_dir: str) -> core.HomeAssistant:
    """Home Assistant as `hass` starts it, minus the switch to recovery mode when the frontend
    does not load (its packages are not installed: this test needs MQTT, not a UI)."""
    hass = core.HomeAssistant(config_dir)
    bootstrap.async_enable_logging(hass)
    hass.config.skip_pip = True
    loader.async_setup(hass)
    config = await conf_util.async_hass_config_yaml(hass)
    assert await bootstrap.async_from_config_dict(config, hass) is not None
    assert "mqtt" in hass.config.components, "the MQTT integration did not set up"
    await hass.async_start()
    return hass


async def main(config_dir: str, identifier: str, button_id: str, timeout: float) -> None:
    hass = await start(config_dir)
    try:
        entities = entity_registry.async_get(hass)
        devices = device_registry.async_get(hass)
        button = await wait_for(
            lambda: entities.async_get_entity_id("button", "mqtt", button_id), timeout, "the button"
        )
        device = devices.async_get_device(identifiers={("mqtt", identifier)})
        assert device is not None
        mine = [e for e in entities.entities.values() if e.device_id == device.id]
        await wait_for(
            lambda: hass.states.get(button) and hass.states.get(button).state != "unavailable",
            timeout,
            "the button to be available",
        )
        report(
            event="discovered",
            device={
                "name": device.name,
                "sw_version": device.sw_version,
                "configuration_url": device.configuration_url,
                "manufacturer": device.manufacturer,
            },
            entities=sorted(e.entity_id for e in mine),
            button=button,
            button_state=hass.states.get(button).state,
        )
        await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
        report(event="pressed", button=button)
        # the sensor of the command's last run follows sysmenu's retained state
        sensor = button.replace("button.", "sensor.", 1) + "_last_run"
        state = await wait_for(
            lambda: (s := hass.states.get(sensor)) and s.state == "ok" and s, timeout, "the last run to be ok"
        )
        report(event="last_run", sensor=sensor, state=state.state, attributes=dict(state.attributes))
        # and its availability follows sysmenu's status topic
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if line.strip() == "watch-offline":
            await wait_for(lambda: hass.states.get(button).state == "unavailable", timeout, "unavailable")
            report(event="unavailable", button=button)
    finally:
        await hass.async_stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
