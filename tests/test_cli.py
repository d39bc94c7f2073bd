"""The sysmenu command line (click's runner, real store in a temp dir)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sysmenu.cli import main
from sysmenu.passwords import verify_password
from sysmenu.store import Store

CONFIG = """\
system:
  actions:
    - action: hi
      name: Say hi
      command: echo hi
    - action: divider
    - action: bad
      name: Bad
      command: "echo oops >&2; exit 2"
"""


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliRunner, list[str]]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    return CliRunner(), ["--config", str(config), "--data-dir", str(tmp_path / "data")]


def test_user_add_list_remove(cli: tuple[CliRunner, list[str]], tmp_path: Path) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "user", "add", "ann", "--group", "admins", "--password", "my pw!"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, [*base, "user", "add", "ann", "--password", "-"])
    assert r.exit_code == 1 and "exists already" in r.output
    r = runner.invoke(main, [*base, "user", "list"])
    assert "ann" in r.output and "SYSTEM" in r.output
    store = Store(tmp_path / "data" / "sysmenu.db")
    stored = store.accounts.password_hash("ann")
    # stored as an argon2 hash: never the password (whose space and "!" no hash can hold)
    assert stored is not None and stored.startswith("$argon2") and "my pw!" not in stored
    assert verify_password(stored, "my pw!")
    assert not verify_password(stored, "my pw")
    store.close()
    r = runner.invoke(main, [*base, "user", "remove", "ann"])
    assert r.exit_code == 0
    r = runner.invoke(main, [*base, "user", "remove", "ann"])
    assert r.exit_code == 1 and "no user" in r.output


def test_password_is_prompted(cli: tuple[CliRunner, list[str]]) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "user", "add", "bo"], input="s3cret\ns3cret\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, [*base, "user", "passwd", "bo"], input="new\nnew\n")
    assert r.exit_code == 0


def test_key_create_list_revoke(cli: tuple[CliRunner, list[str]], tmp_path: Path) -> None:
    runner, base = cli
    runner.invoke(main, [*base, "user", "add", "ann", "--group", "admins", "--password", "-"])
    r = runner.invoke(main, [*base, "key", "create", "ann", "--name", "ha"])
    assert r.exit_code == 0
    key = r.output.strip()
    assert len(key) == 43
    store = Store(tmp_path / "data" / "sysmenu.db")
    user = store.accounts.user_for_key(key)
    assert user is not None and user.name == "ann"
    r = runner.invoke(main, [*base, "key", "list"])
    assert key[:8] in r.output and key not in r.output and "active" in r.output
    r = runner.invoke(main, [*base, "key", "revoke", key[:8]])
    assert r.exit_code == 0
    assert store.accounts.user_for_key(key) is None
    r = runner.invoke(main, [*base, "key", "revoke", key[:8]])
    assert r.exit_code == 1
    r = runner.invoke(main, [*base, "key", "create", "nobody"])
    assert r.exit_code == 1 and "no user" in r.output
    store.close()


def test_list_shows_commands_and_dividers(cli: tuple[CliRunner, list[str]]) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "list"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].split()[:2] == ["custom", "hi"]
    assert lines[1].split() == ["custom", "----"]


def test_run_records_and_runs_show(cli: tuple[CliRunner, list[str]]) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "run", "custom", "hi"])
    assert r.exit_code == 0
    assert "hi" in r.output
    r = runner.invoke(main, [*base, "run", "custom", "bad"])
    assert r.exit_code == 1
    r = runner.invoke(main, [*base, "runs"])
    lines = r.output.splitlines()
    assert len(lines) == 2 and "custom:bad" in lines[0] and "failed" in lines[0]
    run_id = lines[1].split()[0]
    r = runner.invoke(main, [*base, "runs", "show", run_id])
    assert "custom:hi" in r.output and "state ok" in r.output and "via cli" in r.output
    r = runner.invoke(main, [*base, "runs", "--state", "failed"])
    assert len(r.output.splitlines()) == 1
    r = runner.invoke(main, [*base, "runs", "follow", run_id])
    assert r.exit_code == 0 and "hi" in r.output
    r = runner.invoke(main, [*base, "runs", "show", "999"])
    assert r.exit_code == 1
    r = runner.invoke(main, [*base, "run", "custom", "nope"])
    assert r.exit_code == 1 and "no command" in r.output
    r = runner.invoke(main, [*base, "run", "custom", "divider"])
    assert r.exit_code == 1 and "Dividers" in r.output


def test_check_config(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CONFIG)
    r = CliRunner().invoke(main, ["check-config", str(good)])
    assert r.exit_code == 0 and "OK (0 core, 3 custom, 0 plugin)" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("system:\n  actions:\n    - action: x\n      ignore: perhaps\n")
    r = CliRunner().invoke(main, ["check-config", str(bad)])
    assert r.exit_code == 1
    assert f"{bad}, line 4: system.actions.0.ignore = 'perhaps'" in r.output


def test_bad_config_stops_every_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sysmenu:\n  port: many\n")
    r = CliRunner().invoke(main, ["--config", str(bad), "list"])
    assert r.exit_code == 1 and "line 2: sysmenu.port = 'many'" in r.output


def test_every_cli_command_is_documented_in_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()

    def walk(group: object, prefix: str) -> list[str]:
        names = []
        for name, command in getattr(group, "commands", {}).items():
            names.append(f"{prefix}{name}")
            names += walk(command, f"{prefix}{name} ")
        return names

    for name in walk(main, "sysmenu "):
        assert f"`{name}" in readme, f"{name} is not in the README"
