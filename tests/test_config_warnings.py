"""A real OctoPrint config.yaml always starts: its oddities are warnings, shown everywhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from sysmenu.cli import main
from tests.conftest import Env

pytestmark = pytest.mark.anyio

ODD = """\
system:
  actions:
    - action: hello
      name: Hello
      command: echo hello
      asynch: true
    - name: no action here
    - action: bad/slash
      command: 'true'
"""
WARNINGS = [
    "test.yaml, line 6: unknown key 'system.actions.0.asynch'",
    "test.yaml, line 7: system.actions.1.action: Field required",
]


def test_check_config_prints_the_warnings_and_succeeds(tmp_path: Path) -> None:
    config = tmp_path / "test.yaml"
    config.write_text(ODD)
    r = CliRunner().invoke(main, ["check-config", str(config)])
    assert r.exit_code == 0, r.output
    assert f"warning: {config!s}, line 6: unknown key 'system.actions.0.asynch'" in r.output
    assert "system.actions.2.action = 'bad/slash': can never be run" in r.output
    assert "OK (0 core, 2 custom, 0 plugin), 3 warning(s)" in r.output
    config.write_text("sysmenu:\n  strict: true\n" + ODD)
    r = CliRunner().invoke(main, ["check-config", str(config)])
    assert r.exit_code == 1 and "unknown key 'system.actions.0.asynch'" in r.output


@pytest.mark.config(ODD)
async def test_status_lists_the_warnings(env: Env) -> None:
    r = await env.client.get("/api/status", headers=env.auth())
    warnings = r.json()["config"]["warnings"]
    assert warnings[:2] == WARNINGS and "bad/slash" in warnings[2]
    assert r.json()["mqtt"] is None  # no sysmenu.mqtt section
    r = await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
    assert r.status_code == 204


@pytest.mark.config(ODD)
async def test_warnings_are_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    from sysmenu.config import parse

    with caplog.at_level(logging.WARNING, logger="sysmenu"):
        env.app.state.sysmenu.apply(parse(ODD, "test.yaml"))  # type: ignore[union-attr]
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("config: ")][:2] == [
        f"config: {w}" for w in WARNINGS
    ]
