"""Run by Home Assistant's own interpreter (tests/e2e/homeassistant.py), never imported by
the test suite: Home Assistant's OctoPrint integration, in process, against a real sysmenu.

usage: python ha_octoprint_flow.py CONFIG_DIR PORT USER SIGNAL_DIR

1. The config flow as the UI drives it (step "user" with host, port, path and user name),
   which runs the Application Keys flow through pyoctoprintapi; once the key arrives
   (the test approves the request through sysmenu), the entry is created and set up.
2. The calls Home Assistant's shutdown / reboot / restart buttons make (current releases;
   2024.3 has the client calls but not yet the buttons): ``client.shutdown()``,
   ``client.reboot_system()``, ``client.restart()`` on the entry's own client.
3. Then it writes ``SIGNAL_DIR/loaded`` and waits for ``SIGNAL_DIR/revoked`` (the test
   revokes the key), refreshes the coordinator and reports whether Home Assistant started
   its re-authentication flow (what pyoctoprintapi's 403 handling leads to).

The outcome is one JSON object on the last line of stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from homeassistant import bootstrap, config_entries, core, loader
from homeassistant.config_entries import ConfigEntryState
from homeassistant.setup import async_setup_component

STEP_TIMEOUT = 120.0


async def wait_for(predicate: Any, what: str, timeout: float = STEP_TIMEOUT) -> None:
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


async def start(config_dir: str) -> core.HomeAssistant:
    hass = core.HomeAssistant(config_dir)
    hass.config.skip_pip = True  # pyoctoprintapi is installed in this venv already
    loader.async_setup(hass)
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await bootstrap.async_load_base_functionality(hass)  # registries, config entries
    assert await async_setup_component(hass, "homeassistant", {})
    await hass.async_start()
    return hass


async def config_flow(hass: core.HomeAssistant, port: int, user: str) -> dict[str, Any]:
    flows = hass.config_entries.flow
    result = await flows.async_init("octoprint", context={"source": config_entries.SOURCE_USER})
    assert result["type"] == "form" and result["step_id"] == "user", result
    user_input = {
        "host": "127.0.0.1",
        "port": port,
        "path": "/",
        "ssl": False,
        "verify_ssl": False,
        "username": user,
    }
    result = await flows.async_configure(result["flow_id"], user_input)
    assert result["type"] == "progress" and result["step_id"] == "get_api_key", result
    flow_id = result["flow_id"]
    print("waiting for the key request to be approved", flush=True)
    # The key task ends when sysmenu hands out the key; Home Assistant then moves the flow
    # on by itself (as the UI's progress view would see it).
    await wait_for(lambda: not any(f["flow_id"] == flow_id for f in flows.async_progress())
                   or flows.async_get(flow_id)["step_id"] != "get_api_key", "the key")  # fmt: skip
    if any(f["flow_id"] == flow_id for f in flows.async_progress()):
        result = await flows.async_configure(flow_id)
    return dict(result)


async def main(config_dir: str, port: int, user: str, signal_dir: Path) -> dict[str, Any]:
    hass = await start(config_dir)
    outcome: dict[str, Any] = {}
    try:
        result = await config_flow(hass, port, user)
        outcome["flow_result"] = result["type"]
        (entry,) = hass.config_entries.async_entries("octoprint")
        await wait_for(lambda: entry.state is not ConfigEntryState.SETUP_IN_PROGRESS, "the set-up")
        await hass.async_block_till_done()
        outcome["entry_state"] = entry.state.value
        outcome["unique_id"] = entry.unique_id
        outcome["key_prefix"] = entry.data["api_key"][:8]
        data = hass.data["octoprint"][entry.entry_id]
        client, coordinator = data["client"], data["coordinator"]
        outcome["job_state"] = coordinator.data["job"].state if coordinator.data["job"] else None
        outcome["printer"] = coordinator.data["printer"]
        for call in ("shutdown", "reboot_system", "restart"):
            await getattr(client, call)()
        outcome["calls"] = "ok"
        (signal_dir / "loaded").write_text(json.dumps(outcome))
        await wait_for(lambda: (signal_dir / "revoked").exists(), "the key's revocation")
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        reauth = [
            f for f in hass.config_entries.flow.async_progress() if f["context"].get("source") == "reauth"
        ]
        outcome["reauth_flows"] = [f["handler"] for f in reauth]
        outcome["update_success_after_revoke"] = coordinator.last_update_success
    finally:
        await hass.async_stop(force=True)
    return outcome


if __name__ == "__main__":
    config_dir, port, user, signal_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    print(json.dumps(asyncio.run(main(config_dir, port, user, signal_dir)), default=str), flush=True)
