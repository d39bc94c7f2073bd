"""Home Assistant for real: its OctoPrint integration against a real sysmenu.

Home Assistant 2024.3.3 runs in its own cached venv (tests/e2e/homeassistant.py) and is
driven in process by tests/e2e/ha_octoprint_flow.py: the config flow as the UI drives it,
whose Application Keys request this test approves with ``sysmenu key approve``; the entry
must reach LOADED; the calls Home Assistant's shutdown / reboot / restart buttons make
through pyoctoprintapi must run the configured commands (marker files); a revoked key must
lead to Home Assistant's re-authentication flow, not an exception. (The integration's camera
platform needs Home Assistant's own web server, which is not started here: it would listen
on every address. Its failure does not touch the entry.)
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from sysmenu.store import Store
from tests.e2e.homeassistant import homeassistant_python
from tests.e2e.server import running_server, sysmenu
from tests.e2e.test_client_programs import markers

pytestmark = pytest.mark.e2e

# What the octoprint integration imports or needs besides Home Assistant itself (its
# manifest's requirement, and those of the ssdp, zeroconf and network components its
# config flow imports), as pinned by Home Assistant 2024.3.3.
EXTRA = ["pyoctoprintapi==0.1.12", "async-upnp-client==0.38.2", "zeroconf==0.131.0", "ifaddr==0.2.0"]
FLOW = Path(__file__).parent / "ha_octoprint_flow.py"
DEADLINE = 180.0

CONFIG = """\
server:
  commands:
    systemShutdownCommand: "touch {tmp}/shutdown"
    systemRestartCommand: "touch {tmp}/reboot"
    serverRestartCommand: "touch {tmp}/restart"
sysmenu:
  reload_interval: 0
"""


def wait_for(predicate, what: str, process: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"Home Assistant ended before {what}:\n{process.communicate()[0]}")
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"timed out waiting for {what}:\n{process.communicate()[0]}")


def test_home_assistant_sets_up_runs_commands_and_reauthenticates(tmp_path: Path) -> None:
    interpreter = homeassistant_python(EXTRA)
    with running_server(tmp_path, CONFIG.format(tmp=tmp_path)) as server:
        data = server.data_dir
        sysmenu("user", "add", "ann", "--group", "admins", "--password", "-", data_dir=data)
        signals = tmp_path / "signals"
        signals.mkdir()
        ha = subprocess.Popen(
            # -P: the script's directory holds this suite's homeassistant.py, not the package
            [str(interpreter), "-P", str(FLOW), str(tmp_path / "ha"), str(server.port), "ann", str(signals)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            requests = ""

            def asked() -> bool:
                nonlocal requests
                requests = sysmenu("key", "requests", data_dir=data)
                return "'Home Assistant' from 127.0.0.1" in requests

            wait_for(asked, "Home Assistant's key request", ha)
            assert "for user ann" in requests
            request_id = requests.split()[0]
            assert "approved" in sysmenu("key", "approve", request_id, data_dir=data)
            wait_for((signals / "loaded").exists, "the entry to load", ha)
            loaded = json.loads((signals / "loaded").read_text())
            assert loaded["flow_result"] == "create_entry"
            assert loaded["entry_state"] == "loaded"
            assert loaded["job_state"] == "Offline" and loaded["printer"] is None  # no printer: 409
            assert loaded["calls"] == "ok"
            markers(tmp_path, "shutdown", "reboot", "restart")
            keys = sysmenu("key", "list", "ann", data_dir=data)
            assert loaded["key_prefix"] in keys and "Home Assistant" in keys
            sysmenu("key", "revoke", loaded["key_prefix"], data_dir=data)
            (signals / "revoked").touch()
            output, _ = ha.communicate(timeout=DEADLINE)
        finally:
            if ha.poll() is None:
                ha.kill()
                ha.wait()
        assert ha.returncode == 0, output
        outcome = json.loads(output.strip().splitlines()[-1])
        assert outcome["reauth_flows"] == ["octoprint"], output
        assert outcome["update_success_after_revoke"] is False
        with server.client() as http:
            runs = http.get("/api/runs", params={"source": "core"}).json()["runs"]
            assert sorted(r["action"] for r in runs) == ["reboot", "restart", "shutdown"]
            assert {r["user"] for r in runs} == {"ann"}
        store = Store(data / "sysmenu.db")
        events = {a["event"]: a for a in store.audit.list()}
        store.close()
        assert events["appkey_approved"]["auth"] == "cli"
        assert events["appkey_issued"]["detail"]["app"] == "Home Assistant"
