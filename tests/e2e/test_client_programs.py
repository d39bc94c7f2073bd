"""Client programs against a real sysmenu: octoprint-cli for real (from PyPI, unchanged),
OctoDash's and OctoScreen's start-up sequences replayed request by request from their
sources (each request cites the file and call it comes from)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.e2e

OCTOPRINT_CLI = str(Path(sys.executable).parent / "octoprint-cli")
CONFIG = """\
server:
  commands:
    systemShutdownCommand: "touch {tmp}/shutdown"
    systemRestartCommand: "touch {tmp}/reboot"
    serverRestartCommand: "touch {tmp}/restart"
system:
  actions:
    - action: hello
      name: Hello
      command: "touch {tmp}/hello"
sysmenu:
  reload_interval: 0
"""


def markers(tmp: Path, *names: str, timeout: float = 15.0) -> None:
    """Wait for the marker files of asynchronous commands (answered 204 before they run)."""
    deadline = time.monotonic() + timeout
    while not all((tmp / name).exists() for name in names):
        assert time.monotonic() < deadline, [n for n in names if not (tmp / n).exists()]
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> object:
    with running_server(tmp_path, CONFIG.format(tmp=tmp_path)) as server:
        yield server


def octoprint_cli(
    server: Server, tmp: Path, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    ini = tmp / "octoprint-cli.ini"
    # UpdateCheck off: it would ask GitHub for releases on every call.
    ini.write_text(
        f"[server]\nServerAddress = {server.url}\nApiKey = {key or server.key}\n\n"
        "[preferences]\nUpdateCheck = false\nFormattedText = false\n"
    )
    return subprocess.run(
        [OCTOPRINT_CLI, "-c", str(ini), *args], input="y\n", capture_output=True, text=True, timeout=60
    )


def test_octoprint_cli_system_commands_run(server: Server, tmp_path: Path) -> None:
    """octoprint-cli checks GET /api/version, then GET /api/job as its key check, then
    POSTs /api/system/commands/core/<action> and wants 204."""
    for command, marker in (("shutdown", "shutdown"), ("reboot", "reboot"), ("restart", "restart")):
        result = octoprint_cli(server, tmp_path, "system", command)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "incorrect" not in result.stdout and "Unable" not in result.stdout
        markers(tmp_path, marker)
    result = octoprint_cli(server, tmp_path, "version")
    assert result.returncode == 0 and "1.11.8" in result.stdout, result.stdout


def test_octoprint_cli_wrong_key_sends_nothing(server: Server, tmp_path: Path) -> None:
    # Its first check is GET /api/version, which answers a wrong key 403 (as OctoPrint
    # 1.11.8 does), so it reports the server unreachable and stops.
    result = octoprint_cli(server, tmp_path, "system", "shutdown", key="wrong-key")
    assert result.returncode == 1
    assert "cannot be reached" in result.stdout
    assert not (tmp_path / "shutdown").exists()


def test_octodash_start_up_reaches_the_system_menu(server: Server, tmp_path: Path) -> None:
    """OctoDash (UnchartedBull/OctoDash, main branch) as it starts with a configured key."""
    with httpx.Client(base_url=server.url, headers={"X-Api-Key": server.key}, timeout=30) as http:
        # src/services/system/system.octoprint.service.ts getSessionKey():
        #   POST /api/login {passive: true}; reads name and session (for its push socket)
        r = http.post("/api/login", json={"passive": True})
        assert r.status_code == 200 and r.json()["name"] == "admin" and "session" in r.json()
        # src/services/socket/socket.octoprint.service.ts tryConnect(): GET api/connection,
        #   a 403 there is "your API key is invalid"; checkPrinterConnection() reads current.state
        r = http.get("/api/connection")
        assert r.status_code == 200 and r.json()["current"]["state"] == "Closed"
        # src/services/octoprint-settings.service.ts loadSettings(): GET api/settings
        r = http.get("/api/settings")
        assert r.status_code == 200 and isinstance(r.json()["plugins"], dict)
        assert "octodash" not in r.json()["plugins"]  # OctoDash falls back to its own defaults
        # system.octoprint.service.ts connectPrinter(): POST api/connection {command: connect, save: false}
        r = http.post("/api/connection", json={"command": "connect", "save": False})
        assert r.status_code == 204
        # system.octoprint.service.ts getLocalIpAddress(): POST api/util/test {command: address}
        r = http.post("/api/util/test", json={"command": "address"})
        assert r.status_code == 200 and r.json()["is_lan_address"] is True and r.json()["address"]
        # system.octoprint.service.ts sendCommand(cmd): POST api/system/commands/core/<cmd>, body null
        for command in ("shutdown", "reboot", "restart"):
            r = http.post(f"/api/system/commands/core/{command}", content=b"null",
                          headers={"Content-Type": "application/json"})  # fmt: skip
            assert r.status_code == 204, (command, r.text)
    markers(tmp_path, "shutdown", "reboot", "restart")


def test_octoscreen_start_up_reaches_the_system_menu(server: Server, tmp_path: Path) -> None:
    """OctoScreen (Z-Bolt/OctoScreen 2.7.4) from its splash screen to its System panel."""
    with httpx.Client(base_url=server.url, headers={"X-Api-Key": server.key}, timeout=30) as http:
        # ui/ui.go verifyConnection(): octoprintApis/ConnectionRequest.go GET /api/connection
        r = http.get("/api/connection")
        assert r.status_code == 200
        state = r.json()["current"]["state"]
        assert state.startswith("Closed")  # dataModels/ConnectionState.go IsOffline()
        # ui.go getUiStateAndMessageFromConnectionResponse(): offline, so
        #   octoprintApis/ConnectRequest.go POST /api/connection {command: connect, save, autoconnect}
        r = http.post("/api/connection", json={"command": "connect", "save": False, "autoconnect": False})
        assert r.status_code == 204
        # ui.go loadSettings(): OctoScreenSettingsRequest.go
        #   GET /api/plugin/zbolt_octoscreen?command=get_settings; a 404 means "plugin not
        #   available, use the defaults" (as on an OctoPrint without the plugin)
        r = http.get("/api/plugin/zbolt_octoscreen", params={"command": "get_settings"})
        assert r.status_code == 404
        # ui/SplashPanel.go showSystem() -> ui/SystemPanel.go:
        #   uiWidgets/OctoPrintInfoBox.go VersionRequest GET /api/version
        r = http.get("/api/version")
        assert r.status_code == 200 and r.json()["server"] == "1.11.8"
        #   uiWidgets/SystemCommandButton.go SystemCommandsRequest GET /api/system/commands (each button)
        r = http.get("/api/system/commands")
        assert r.status_code == 200
        core = {c["action"]: c for c in r.json()["core"]}
        assert {"shutdown", "reboot", "restart"} <= set(core)
        #   SystemCommandButton.go -> octoprintApis/SystemExecuteCommandRequest.go
        #   POST /api/system/commands/<source>/<action>, no body
        for action in ("shutdown", "reboot", "restart"):
            r = http.post(f"/api/system/commands/{core[action]['source']}/{action}")
            assert r.status_code == 204, (action, r.text)
            r = http.post(f"/api/system/commands/{core[action]['source']}/{action}")  # pressed twice
            assert r.status_code == 204, (action, r.text)
    markers(tmp_path, "shutdown", "reboot", "restart")
