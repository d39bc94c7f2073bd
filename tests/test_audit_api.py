"""The audit log as people read it: completeness, GET /api/audit, `sysmenu audit`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from starlette.routing import Route

from sysmenu.cli import main
from sysmenu.cli.audit import audit
from sysmenu.cli.runs import runs
from sysmenu.passwords import hash_password
from tests.conftest import Env

pytestmark = pytest.mark.anyio

PASSWORD = "an audited password"
Step = Callable[[Env], Awaitable[object]]


async def _login(env: Env) -> object:
    return await env.client.post("/api/login", json={"user": "admin", "pass": PASSWORD})


async def _login_failed(env: Env) -> object:
    return await env.client.post("/api/login", json={"user": "admin", "pass": "wrong"})


async def _logout(env: Env) -> object:
    csrf = (await _login(env)).json()["csrf_token"]  # type: ignore[attr-defined]
    return await env.client.post("/api/logout", headers={"X-CSRF-Token": csrf})


async def _execute(env: Env) -> object:
    return await env.client.post("/api/system/commands/custom/hello", headers=env.auth())


async def _legacy(env: Env) -> object:
    return await env.client.post("/api/system", json={"action": "hello"}, headers=env.auth())


async def _kill(env: Env) -> object:
    r = await env.client.post(
        "/api/system/commands/custom/later", headers=env.auth() | {"Prefer": "respond-async"}
    )
    return await env.client.post(f"/api/runs/{r.json()['id']}/kill", headers=env.auth())


async def _connect(env: Env) -> object:
    return await env.client.post("/api/connection", json={"command": "connect"}, headers=env.auth())


async def _address_test(env: Env) -> object:
    return await env.client.post("/api/util/test", json={"command": "address"}, headers=env.auth())


async def _key_request(env: Env) -> object:
    return await env.client.post("/plugin/appkeys/request", json={"app": "An app"})


async def _key_decision(env: Env) -> object:
    await _key_request(env)
    (token,) = (await env.client.get("/api/plugin/appkeys", headers=env.auth())).json()["pending"]
    return await env.client.post(
        f"/plugin/appkeys/decision/{token}", json={"decision": True}, headers=env.auth()
    )


# Every route that changes state -> what to do to it, and the one event it must write
# (before the steps that set it up, which are listed here too).
STATE_CHANGING: dict[tuple[str, str], tuple[Step, list[str]]] = {
    ("POST", "/api/login"): (_login, ["login"]),
    ("POST", "/api/logout"): (_logout, ["login", "logout"]),
    ("POST", "/api/system/commands/{source}/{action}"): (_execute, ["execute"]),
    ("POST", "/api/system"): (_legacy, ["execute"]),
    ("POST", "/api/runs/{run_id}/kill"): (_kill, ["execute", "kill"]),
    # the no-printer endpoints change nothing, so they write nothing
    ("POST", "/api/connection"): (_connect, []),
    ("POST", "/api/util/test"): (_address_test, []),
    ("POST", "/plugin/appkeys/request"): (_key_request, ["appkey_request"]),
    ("POST", "/plugin/appkeys/decision/{user_token}"): (_key_decision, ["appkey_request", "appkey_approved"]),
}


def routes(env: Env) -> set[tuple[str, str]]:
    assert env.app is not None
    found = set()
    for route in env.app.routes:
        if isinstance(route, Route):
            for method in route.methods or ():
                found.add((method, route.path))
    return found


def events(env: Env) -> list[str]:
    return [e["event"] for e in reversed(env.store.audit.query(limit=1000))]


@pytest.fixture
def passwords(env: Env) -> Env:
    env.store.accounts.set_password("admin", hash_password(PASSWORD))
    return env


async def test_every_state_changing_route_is_listed(env: Env) -> None:
    changing = {(m, p) for m, p in routes(env) if m not in ("GET", "HEAD")}
    missing = changing - set(STATE_CHANGING)
    assert not missing, (
        f"routes that change state without an audit test (add them to STATE_CHANGING): {missing}"
    )


@pytest.mark.parametrize("route", list(STATE_CHANGING), ids="{0[0]} {0[1]}".format)
async def test_every_state_changing_route_writes_exactly_one_event(
    passwords: Env, route: tuple[str, str]
) -> None:
    step, expected = STATE_CHANGING[route]
    before = len(events(passwords))
    r = await step(passwords)
    assert r.status_code < 400, r.text  # type: ignore[attr-defined]
    assert events(passwords)[before:] == expected


async def test_a_failed_login_writes_one_event(passwords: Env) -> None:
    await _login_failed(passwords)
    (entry,) = passwords.store.audit.query(limit=1)
    assert entry["event"] == "login_failed" and entry["user"] == "admin"


async def test_reads_write_no_event(env: Env) -> None:
    before = len(events(env))
    for method, path in sorted(routes(env)):
        if method == "GET" and "{" not in path:
            await env.client.get(path, headers=env.auth())
    assert len(events(env)) == before


async def test_execute_event_names_its_run(env: Env) -> None:
    r = await env.client.post(
        "/api/system/commands/custom/hello", headers=env.auth() | {"Prefer": "respond-async"}
    )
    (entry,) = env.store.audit.query(events=["execute"], limit=1)
    assert entry["detail"] == {"source": "custom", "action": "hello", "run": r.json()["id"]}
    assert (entry["user"], entry["auth"], entry["client"]) == ("admin", "apikey", "127.0.0.1")


async def test_audit_is_for_admins_only(env: Env) -> None:
    assert (await env.client.get("/api/audit", headers=env.auth())).status_code == 200
    assert (await env.client.get("/api/audit", headers=env.auth(env.user_key))).status_code == 403
    assert (await env.client.get("/api/audit")).status_code == 403
    env.store.accounts.add_user("op", ["operators"])
    op = env.store.accounts.create_key("op")
    assert (await env.client.get("/api/audit", headers=env.auth(op))).status_code == 403


async def test_audit_filters_and_pages(passwords: Env) -> None:
    await _execute(passwords)
    await _login_failed(passwords)
    await _login(passwords)
    client, auth = passwords.client, passwords.auth()
    r = await client.get("/api/audit", params={"event": "login,login_failed"}, headers=auth)
    assert [e["event"] for e in r.json()["entries"]] == ["login", "login_failed"]
    r = await client.get("/api/audit", params={"user": "admin", "limit": 1}, headers=auth)
    page = r.json()
    assert len(page["entries"]) == 1 and "before=" in page["next"]
    r = await client.get(page["next"], headers=auth)
    assert r.json()["entries"][0]["id"] < page["entries"][0]["id"]
    assert (await client.get("/api/audit", params={"since": "1h"}, headers=auth)).json()["entries"]
    r = await client.get("/api/audit", params={"until": "yesterday"}, headers=auth)
    assert r.json()["entries"] == []
    for bad in ({"since": "soon"}, {"limit": "0"}, {"limit": "x"}, {"before": "-1"}):
        r = await client.get("/api/audit", params=bad, headers=auth)
        assert r.status_code == 400 and set(r.json()) == {"error"}, bad


async def test_runs_filter_by_time(env: Env) -> None:
    await _execute(env)
    auth = env.auth()
    assert (await env.client.get("/api/runs", params={"since": "today"}, headers=auth)).json()["runs"]
    assert (await env.client.get("/api/runs", params={"since": "2h", "until": "now"}, headers=auth)).json()[
        "runs"
    ]
    assert (await env.client.get("/api/runs", params={"until": "yesterday"}, headers=auth)).json()[
        "runs"
    ] == []
    r = await env.client.get("/api/runs", params={"since": "last tuesday"}, headers=auth)
    assert r.status_code == 400 and "today, yesterday" in r.json()["error"]


# -- the CLI -----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> tuple[CliRunner, list[str], Path]:
    config = tmp_path / "config.yaml"
    config.write_text("system:\n  actions:\n    - action: hi\n      command: echo hi\n")
    data = tmp_path / "data"
    return CliRunner(), ["--config", str(config), "--data-dir", str(data)], data / "sysmenu.db"


def test_cli_changes_are_audited_and_readable(cli: tuple[CliRunner, list[str], Path]) -> None:
    runner, base, _ = cli
    for args in (
        ["user", "add", "ann", "--group", "viewers", "--password", "-"],
        ["group", "add", "night", "--permission", "SYSTEM"],
        ["user", "groups", "ann", "--add", "night"],
        ["key", "create", "ann", "--scope", "read"],
        ["key", "revoke", "1"],
        ["user", "passwd", "ann", "--password", "a long new password"],
        ["user", "remove", "ann"],
        ["group", "remove", "night"],
        ["run", "custom", "hi"],
    ):
        r = runner.invoke(main, [*base, *args])
        assert r.exit_code == 0, (args, r.output)
    r = runner.invoke(main, [*base, "audit", "--json"])
    assert r.exit_code == 0, r.output
    entries = json.loads(r.output)
    assert [e["event"] for e in reversed(entries)] == [
        "user-added",
        "group-added",
        "user-groups",
        "key-created",
        "key-revoked",
        "password-set",
        "user-removed",
        "group-removed",
        "execute",
    ]
    assert all(e["auth"] == "cli" for e in entries)
    r = runner.invoke(main, [*base, "audit", "--event", "key-created", "--since", "today"])
    assert r.exit_code == 0 and "key-created" in r.output and "user-added" not in r.output
    assert "scope=read" in r.output
    r = runner.invoke(main, [*base, "audit", "--since", "whenever"])
    assert r.exit_code == 2 and "today, yesterday" in r.output


def test_cli_audit_verify_names_the_first_bad_row(cli: tuple[CliRunner, list[str], Path]) -> None:
    runner, base, db = cli
    for name in ("a", "b", "c"):
        assert runner.invoke(main, [*base, "user", "add", name, "--password", "-"]).exit_code == 0
    r = runner.invoke(main, [*base, "audit", "verify"])
    assert r.exit_code == 0 and "3 rows" in r.output and "intact" in r.output
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit SET user='mallory' WHERE id=2")
    conn.commit()
    conn.close()
    r = runner.invoke(main, [*base, "audit", "verify"])
    assert r.exit_code == 1 and "row 2" in r.output and "changed" in r.output


def test_cli_runs_time_filters_and_unknown_state(cli: tuple[CliRunner, list[str], Path]) -> None:
    runner, base, _ = cli
    assert runner.invoke(main, [*base, "run", "custom", "hi"]).exit_code == 0
    r = runner.invoke(main, [*base, "runs", "--since", "today"])
    assert r.exit_code == 0 and "custom:hi" in r.output
    r = runner.invoke(main, [*base, "runs", "--until", "yesterday"])
    assert r.exit_code == 0 and "custom:hi" not in r.output
    r = runner.invoke(main, [*base, "runs", "--state", "fine"])
    assert r.exit_code == 2 and "fine" in r.output
    assert runner.invoke(main, [*base, "runs", "--help"]).exit_code == 0
    for command in (runs, audit):
        for param in command.params:
            assert isinstance(param, click.Option) and param.help, f"{command.name} {param.name} has no help"


def test_cli_groups_and_scoped_keys(cli: tuple[CliRunner, list[str], Path]) -> None:
    runner, base, _ = cli
    r = runner.invoke(main, [*base, "group", "list"])
    assert r.exit_code == 0 and all(g in r.output for g in ("admins", "operators", "viewers", "users"))
    assert runner.invoke(main, [*base, "group", "add", "admins"]).exit_code == 1
    assert runner.invoke(main, [*base, "group", "add", "night", "--permission", "ROOT"]).exit_code == 2
    assert (
        runner.invoke(main, [*base, "user", "add", "ann", "--group", "nope", "--password", "-"]).exit_code
        == 1
    )
    assert (
        runner.invoke(main, [*base, "user", "add", "ann", "--group", "viewers", "--password", "-"]).exit_code
        == 0
    )
    r = runner.invoke(main, [*base, "user", "groups", "ann", "--add", "operators", "--remove", "viewers"])
    assert r.exit_code == 0 and "operators" in r.output and "viewers" not in r.output
    r = runner.invoke(main, [*base, "key", "create", "ann", "--only", "custom:hi,core:reboot"])
    assert r.exit_code == 0
    r = runner.invoke(main, [*base, "key", "create", "ann", "--only", "hi"])
    assert r.exit_code == 2 and "source:action" in r.output
    r = runner.invoke(main, [*base, "key", "create", "ann", "--scope", "read", "--only", "custom:hi"])
    assert r.exit_code == 2
    r = runner.invoke(main, [*base, "key", "list"])
    assert "only core:reboot,custom:hi" in r.output
