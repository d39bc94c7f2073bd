"""Fuzzing from the OpenAPI document with schemathesis, against a real server.

With a valid key, a wrong key and none: no 5xx (the config has no failing
command, so the documented 500 cannot occur), every error body is
``{"error": ...}`` as documented, no response slower than the budget.
CI runs a bounded, seeded pass; SYSMENU_FUZZ_EXAMPLES=1000 (and no seed) runs longer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e

CONFIG = """\
sysmenu:
  key_failure_limit: 1000000
server:
  commands:
    systemShutdownCommand: "true"
    serverRestartCommand: "true"
system:
  actions:
    - action: ok
      name: OK
      command: "true"
    - action: divider
    - action: echo
      name: Echo
      command: "echo hello; echo there >&2"
      async: true
    - action: queued
      name: Queued
      command: "true"
      queue: true
    - action: typed
      name: Typed arguments
      argv: [/usr/bin/printf, "%s %s %s %s", "{text}", "{count}", "{unit}", "{flag}"]
      arguments:
        - name: text
          type: string
          max_length: 64
          allow_option: true
        - name: count
          type: int
          min: 0
          max: 10
        - name: unit
          type: choice
          choices: [a, b]
          default: a
        - name: flag
          type: bool
"""
ST = str(Path(sys.executable).parent / "st")
EXAMPLES = os.environ.get("SYSMENU_FUZZ_EXAMPLES", "40")
SEED = [] if "SYSMENU_FUZZ_EXAMPLES" in os.environ else ["--seed", "20261124"]


@pytest.mark.parametrize("key", ["valid", "wrong", "none"])
def test_schemathesis_finds_nothing(tmp_path: Path, key: str) -> None:
    with running_server(tmp_path, CONFIG) as server:
        # The document a SYSTEM caller gets describes each command's arguments too.
        schema = tmp_path / "openapi.json"
        request = urllib.request.Request(f"{server.url}/api/openapi.json", headers={"X-Api-Key": server.key})
        with urllib.request.urlopen(request, timeout=10) as response:
            schema.write_bytes(response.read())
        assert "/api/system/commands/custom/typed" in json.loads(schema.read_text())["paths"]
        headers = {
            "valid": ["-H", f"X-Api-Key: {server.key}"],
            "wrong": ["-H", "X-Api-Key: nope"],
            "none": [],
        }
        result = subprocess.run(
            [
                ST, "run", str(schema), "--url", server.url, *headers[key],
                "--checks", "all",
                "--max-examples", EXAMPLES, *SEED,
                "--request-timeout", "10", "--max-response-time", "5",
                "--report-dir", str(tmp_path / "reports"),
            ],
            capture_output=True, text=True, timeout=600, check=False,
            env=os.environ | {"NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "Traceback" not in server.output()
