"""Executing commands through the System API (in-process)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import CONFIG, Env

pytestmark = pytest.mark.anyio

URL = "/api/system/commands"


async def test_sync_success_is_204_with_empty_body(env: Env) -> None:
    r = await env.client.post(f"{URL}/custom/hello", headers=env.auth())
    assert r.status_code == 204
    assert r.content == b""


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (None, {}),
        (b"{}", {"Content-Type": "application/json"}),
        (b"", {"Content-Type": "application/octet-stream"}),
        (b"", {"Content-Type": "application/json"}),
    ],
)
async def test_accepted_bodies(env: Env, content: bytes | None, headers: dict[str, str]) -> None:
    r = await env.client.post(f"{URL}/custom/hello", content=content, headers=env.auth() | headers)
    assert r.status_code == 204


async def test_sync_failure_is_500_with_code_and_output(env: Env) -> None:
    r = await env.client.post(f"{URL}/custom/fail", headers=env.auth())
    assert r.status_code == 500
    error = r.json()["error"]
    assert "return code 3" in error
    assert "out" in error and "err" in error
    assert set(r.json()) == {"error"}


async def test_ignore_is_204_whatever_the_exit(env: Env) -> None:
    r = await env.client.post(f"{URL}/custom/ignored", headers=env.auth())
    assert r.status_code == 204
    (run,) = env.store.runs.list(action="ignored")
    # an ignored failure is a success, recorded and shown as one, with its exit code kept
    assert (run.state, run.returncode) == ("ok", 7)
    r = await env.client.get("/api/runs", params={"state": "ok", "action": "ignored"}, headers=env.auth())
    assert [(x["state"], x["returncode"]) for x in r.json()["runs"]] == [("ok", 7)]


GATED = (
    CONFIG
    + """\
    - action: gated
      name: Goes on when the test says so
      command: "until [ -e {tmp}/go ]; do sleep 0.01; done; echo done"
      async: true
"""
)


@pytest.mark.config(GATED)
async def test_async_answers_at_once_and_runs_after(env: Env) -> None:
    r = await env.client.post(f"{URL}/custom/gated", headers=env.auth())
    assert r.status_code == 204
    (run,) = env.store.runs.list(action="gated")
    assert run.state == "running"  # it cannot have ended: the gate is still shut
    (env.tmp / "go").touch()
    for _ in range(1000):
        await asyncio.sleep(0.01)
        row = env.store.runs.get(run.id)
        assert row is not None
        if row.state != "running":
            break
    assert row.state == "ok"
    assert row.stdout == "done\n"


@pytest.mark.parametrize("source", ["custom", "core", "plugin", "bogus"])
async def test_divider_cannot_be_executed(env: Env, source: str) -> None:
    # OctoPrint refuses the action `divider` before it looks at the source: 400, never 404.
    r = await env.client.post(f"{URL}/{source}/divider", headers=env.auth())
    assert r.status_code == 400
    assert r.json() == {"error": "Dividers cannot be executed"}
    assert env.store.runs.list() == []


async def test_spec_without_command_is_500(env: Env) -> None:
    r = await env.client.post(f"{URL}/custom/nocommand", headers=env.auth())
    assert r.status_code == 500
    assert "command" in r.json()["error"]


@pytest.mark.parametrize("path", ["custom/nope", "bogus/hello", "core/nope", "plugin/hello"])
async def test_unknown_command_is_404(env: Env, path: str) -> None:
    r = await env.client.post(f"{URL}/{path}", headers=env.auth())
    assert r.status_code == 404
    assert "error" in r.json()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_is_405(env: Env, method: str) -> None:
    r = await env.client.request(method, f"{URL}/custom/hello", headers=env.auth())
    assert r.status_code == 405
    assert "error" in r.json()


async def test_wrong_method_on_list_is_405(env: Env) -> None:
    r = await env.client.post(URL, headers=env.auth())
    assert r.status_code == 405


@pytest.mark.parametrize("action", ["shutdown", "reboot", "restart", "restart_safe"])
async def test_core_commands_run(env: Env, action: str) -> None:
    r = await env.client.post(f"{URL}/core/{action}", headers=env.auth())
    assert r.status_code == 204
    assert env.store.runs.list(source="core", action=action)


@pytest.mark.config("server:\n  commands:\n    systemRestartCommand: echo reboot\n")
async def test_core_command_listed_only_when_set(env: Env) -> None:
    r = await env.client.get(URL, headers=env.auth())
    assert [s["action"] for s in r.json()["core"]] == ["reboot"]
    assert r.json()["custom"] == []
    r = await env.client.post(f"{URL}/core/shutdown", headers=env.auth())
    assert r.status_code == 404


async def test_every_execution_is_recorded_with_who(env: Env) -> None:
    await env.client.post(f"{URL}/custom/hello", headers=env.auth())
    (run,) = env.store.runs.list(action="hello")
    assert run.user == "admin"
    assert run.auth == "apikey"
    assert run.client == "127.0.0.1"
    (entry,) = [a for a in env.store.audit.list() if a["event"] == "execute"]
    assert entry["user"] == "admin"
    assert entry["detail"] == {"source": "custom", "action": "hello", "run": run.id}


async def test_legacy_post_runs_custom_action(env: Env) -> None:
    r = await env.client.post("/api/system", json={"action": "hello"}, headers=env.auth())
    assert r.status_code == 204
    assert env.store.runs.list(action="hello")
    r = await env.client.post("/api/system", json={"action": "fail"}, headers=env.auth())
    assert r.status_code == 500
    r = await env.client.post("/api/system", json={"action": "nope"}, headers=env.auth())
    assert r.status_code == 404


async def test_legacy_post_takes_form_and_query(env: Env) -> None:
    r = await env.client.post("/api/system", data={"action": "hello"}, headers=env.auth())
    assert r.status_code == 204
    r = await env.client.post("/api/system", params={"action": "hello"}, headers=env.auth())
    assert r.status_code == 204
    assert len(env.store.runs.list(action="hello")) == 2


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b"{}", b"null", b'{"other": "hello"}'])
async def test_legacy_post_bad_body_is_400(env: Env, body: bytes) -> None:
    headers = env.auth() | {"Content-Type": "application/json"}
    r = await env.client.post("/api/system", content=body, headers=headers)
    assert r.status_code == 400
    assert r.json() == {"error": "action is missing"}


@pytest.mark.parametrize("body", [b'{"action": 3}', b'{"action": null}', b'{"action": ""}'])
async def test_legacy_post_action_that_names_nothing_is_404(env: Env, body: bytes) -> None:
    headers = env.auth() | {"Content-Type": "application/json"}
    r = await env.client.post("/api/system", content=body, headers=headers)
    assert r.status_code == 404
    assert env.store.runs.list() == []


async def test_legacy_post_looks_where_octoprint_looks(env: Env) -> None:
    json_type = env.auth() | {"Content-Type": "application/json"}
    # a JSON object is the only place looked at, even without an action
    r = await env.client.post("/api/system?action=hello", content=b"{}", headers=json_type)
    assert r.status_code == 400
    # a body that is not JSON counts as none: the query string is looked at
    r = await env.client.post("/api/system?action=hello", content=b"{nope", headers=json_type)
    assert r.status_code == 204
    # the query string comes before a form body
    form = env.auth() | {"Content-Type": "application/x-www-form-urlencoded"}
    r = await env.client.post("/api/system?action=hello", content=b"action=fail", headers=form)
    assert r.status_code == 204
    assert len(env.store.runs.list(action="hello")) == 2
    assert env.store.runs.list(action="fail") == []
