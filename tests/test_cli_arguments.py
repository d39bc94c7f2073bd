"""`sysmenu run ... --arg`, `sysmenu list` and `sysmenu runs show` with typed arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sysmenu.cli import main

CONFIG = """\
system:
  actions:
    - action: restart_service
      name: Restart a service
      command: printf '%s|' "$@"; printf '%s' "$SYSMENU_ARG_UNIT"
      arguments:
        - name: unit
          type: choice
          choices: [nginx, mosquitto]
        - name: delay
          type: int
          min: 0
          max: 600
          default: 0
          description: seconds to wait first
        - name: token
          type: string
          secret: true
          required: false
    - action: plain
      name: Plain
      command: echo plain
"""


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliRunner, list[str]]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    return CliRunner(), ["--config", str(config), "--data-dir", str(tmp_path / "data")]


def test_run_with_arguments(cli: tuple[CliRunner, list[str]]) -> None:
    runner, base = cli
    args = ["--arg", "unit=nginx", "--arg", "delay=5", "--arg", "token=s3cret"]
    r = runner.invoke(main, [*base, "run", "custom", "restart_service", *args])
    assert r.exit_code == 0, r.output
    assert "nginx|5|s3cret|nginx" in r.output
    shown = runner.invoke(main, [*base, "runs", "show", "1"])
    assert 'arguments unit="nginx", delay=5, token="********"' in shown.output
    assert "s3cret" not in shown.output.replace("nginx|5|s3cret|nginx", "")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "unit is required"),
        (["--arg", "unit=apache"], "unit should be one of: nginx, mosquitto"),
        (["--arg", "unit=nginx", "--arg", "delay=soon"], "delay should be a whole number"),
        (["--arg", "unit=nginx", "--arg", "delay=601"], "delay should be at most 600"),
        (["--arg", "unit=nginx", "--arg", "colour=red"], "colour is not an argument"),
        (["--arg", "unit"], "unit should be written NAME=VALUE"),
    ],
)
def test_bad_arguments_are_clear_errors_and_run_nothing(
    cli: tuple[CliRunner, list[str]], args: list[str], says: str
) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "run", "custom", "restart_service", *args])
    assert r.exit_code == 1
    assert says in r.output
    assert "restart_service" not in runner.invoke(main, [*base, "runs"]).output


def test_arguments_for_a_command_without_any(cli: tuple[CliRunner, list[str]]) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "run", "custom", "plain", "--arg", "x=1"])
    assert r.exit_code == 1 and "takes no arguments" in r.output


def test_list_shows_arguments(cli: tuple[CliRunner, list[str]]) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "list"])
    assert r.exit_code == 0
    assert "--arg unit=<choice: nginx|mosquitto> (required)" in r.output
    assert "--arg delay=<int: 0..600> (default 0)  seconds to wait first" in r.output
    assert "--arg token=<string> (optional, secret)" in r.output
