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
    r = runner.invoke(main, [*base, "user", "add", "ann", "--group", "admins", "--password", "my long pw!"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, [*base, "user", "add", "ann", "--password", "-"])
    assert r.exit_code == 1 and "exists already" in r.output
    r = runner.invoke(main, [*base, "user", "list"])
    assert "ann" in r.output and "SYSTEM" in r.output
    store = Store(tmp_path / "data" / "sysmenu.db")
    stored = store.accounts.password_hash("ann")
    # stored as an argon2 hash: never the password (whose space and "!" no hash can hold)
    assert stored is not None and stored.startswith("$argon2") and "my long pw!" not in stored
    assert verify_password(stored, "my long pw!")
    assert not verify_password(stored, "my long pw")
    store.close()
    r = runner.invoke(main, [*base, "user", "remove", "ann"])
    assert r.exit_code == 0
    r = runner.invoke(main, [*base, "user", "remove", "ann"])
    assert r.exit_code == 1 and "no user" in r.output


def test_password_is_prompted(cli: tuple[CliRunner, list[str]]) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "user", "add", "bo"], input="s3cret-enough\ns3cret-enough\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        main, [*base, "user", "passwd", "bo"], input="short\nshort\nnew-and-long\nnew-and-long\n"
    )
    assert r.exit_code == 0
    assert "too short: at least 8 characters" in r.output  # and asked again


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
    assert lines[0].split() == ["SOURCE", "ACTION", "NAME", "TIMEOUT", "CONCURRENCY", "FLAGS"]
    assert lines[1].split()[:2] == ["custom", "hi"]
    assert lines[2].split() == ["custom", "----"]


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


LIST_CONFIG = """\
server:
  commands:
    systemShutdownCommand: echo bye
system:
  actions:
    - action: slow
      name: Slow one
      command: sleep 1
      timeout: 7.5
      concurrency: 3
      queue: true
sysmenu:
  default_timeout: 42
"""


def test_list_shows_timeout_concurrency_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(LIST_CONFIG)
    r = CliRunner().invoke(main, ["list", "--config", str(config)])
    assert r.exit_code == 0, r.output
    shutdown = next(line for line in r.output.splitlines() if line.startswith("core"))
    assert "42s (default)" in shutdown and "fresh_credentials" in shutdown and "confirm" in shutdown
    slow = next(line for line in r.output.splitlines() if "slow" in line)
    assert "7.5s" in slow and "3, queued" in slow and slow.rstrip().endswith("-")


def test_config_and_data_dir_after_the_command_name(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    runner = CliRunner()
    data = tmp_path / "after"
    r = runner.invoke(
        main, ["user", "add", "ann", "--password", "-", "--config", str(config), "--data-dir", str(data)]
    )
    assert r.exit_code == 0, r.output
    assert (data / "sysmenu.db").exists()
    r = runner.invoke(main, ["list", "--config", str(config)])
    assert r.exit_code == 0 and "Say hi" in r.output
    # after the name wins over before it
    r = runner.invoke(main, ["--config", str(tmp_path / "nope.yaml"), "list", "--config", str(config)])
    assert r.exit_code == 0 and "Say hi" in r.output
    r = runner.invoke(main, ["runs", "--data-dir", str(data), "--config", str(config)])
    assert r.exit_code == 0


def test_run_asks_before_a_command_with_a_confirm_text(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "server:\n  commands:\n    systemShutdownCommand: echo pretend-shutdown\n"
        "system:\n  actions:\n    - action: x\n      command: echo ran-x\n      confirm: '<b>Sure</b>?'\n"
    )
    runner = CliRunner()
    base = ["--config", str(config), "--data-dir", str(tmp_path / "d")]
    r = runner.invoke(main, [*base, "run", "core", "shutdown"], input="n\n")
    assert r.exit_code == 1 and "Aborted" in r.output and "pretend-shutdown" not in r.output
    assert "You are about to shut down the system." in r.output
    r = runner.invoke(main, [*base, "run", "core", "shutdown"], input="")  # no terminal, no answer
    assert r.exit_code == 1 and "pretend-shutdown" not in r.output
    r = runner.invoke(main, [*base, "run", "core", "shutdown"], input="y\n")
    assert r.exit_code == 0 and "pretend-shutdown" in r.output
    r = runner.invoke(main, [*base, "run", "custom", "x", "--yes"])
    assert r.exit_code == 0 and "ran-x" in r.output and "Sure?" not in r.output
    r = runner.invoke(main, [*base, "run", "-y", "custom", "x"])
    assert r.exit_code == 0 and "ran-x" in r.output
    r = runner.invoke(main, [*base, "runs"])
    assert len(r.output.splitlines()) == 3  # the refused ones were not run


def test_serve_refuses_bad_ports_before_creating_anything(tmp_path: Path) -> None:
    import socket

    runner = CliRunner()
    data = tmp_path / "d"
    r = runner.invoke(main, ["serve", "--port", "99999", "--data-dir", str(data)])
    assert r.exit_code == 2 and "99999 is not in the range 1<=x<=65535" in r.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = runner.invoke(main, ["serve", "--port", str(port), "--data-dir", str(data)])
    assert r.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.output
    assert "First start" not in r.output and "Open http" not in r.output
    assert not (data / "sysmenu.db").exists()


def test_key_revoke_takes_prefixes_starting_with_a_dash(
    cli: tuple[CliRunner, list[str]], tmp_path: Path
) -> None:
    runner, base = cli
    runner.invoke(main, [*base, "user", "add", "ann", "--password", "-"])
    store = Store(tmp_path / "data" / "sysmenu.db")
    while True:  # a key whose prefix starts with "-" (1 in 64 do)
        key = store.accounts.create_key("ann")
        if key.startswith("-"):
            break
        store.accounts.revoke_key(key[:8])
    store.close()
    r = runner.invoke(main, [*base, "key", "revoke", key[:8]])
    assert r.exit_code == 0 and "revoked 1 key(s)" in r.output
    r = runner.invoke(main, [*base, "key", "revoke", "y"])
    assert r.exit_code == 1 and "a prefix is 8 characters" in r.output
    r = runner.invoke(main, [*base, "key", "revoke", "-hAbCdEf"])  # a prefix, not -h
    assert r.exit_code == 1 and "no active key '-hAbCdEf'" in r.output
    r = runner.invoke(main, [*base, "key", "revoke", "-h"])
    assert r.exit_code == 0 and "Usage" in r.output  # help still works


@pytest.mark.parametrize(
    ("name", "password", "problem"),
    [
        ("ann", "a", "too short: at least 8 characters"),
        ("annabelle", "annabelle", "must not be the user name"),
        ("two words", "long enough pw", "invalid user name 'two words'"),
        ("a/b", "long enough pw", "invalid user name 'a/b'"),
        ("-x", "long enough pw", "invalid user name '-x'"),
        ("", "long enough pw", "invalid user name ''"),
    ],
)
def test_user_names_and_passwords_have_rules(
    cli: tuple[CliRunner, list[str]], name: str, password: str, problem: str
) -> None:
    runner, base = cli
    r = runner.invoke(main, [*base, "user", "add", "--password", password, "--", name])
    assert r.exit_code == 1 and problem in r.output
    r = runner.invoke(main, [*base, "user", "list"])
    assert r.output == ""
