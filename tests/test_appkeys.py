"""The Application Keys flow: probe, request, poll, decision (page and CLI), expiry, audit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sysmenu import appkeys
from sysmenu.appkeys import AppKeys
from sysmenu.cli import main
from sysmenu.store import Store
from tests.conftest import Env

pytestmark = pytest.mark.anyio


async def ask(env: Env, app: str = "Home Assistant", user: str | None = None) -> str:
    body = {"app": app} | ({"user": user} if user else {})
    r = await env.client.post("/plugin/appkeys/request", json=body)
    assert r.status_code == 201, r.text
    token = r.json()["app_token"]
    assert r.headers["location"] == f"http://example.com/plugin/appkeys/request/{token}"
    assert r.json()["auth_dialog"].startswith("http://example.com/")
    return str(token)


async def pending(env: Env, key: str | None = None) -> dict[str, dict[str, object]]:
    r = await env.client.get("/api/plugin/appkeys", headers=env.auth(key))
    assert r.status_code == 200
    return dict(r.json()["pending"])


async def test_probe_is_204_for_anyone(env: Env) -> None:
    for headers in ({}, {"X-Api-Key": "wrong"}, env.auth()):
        r = await env.client.get("/plugin/appkeys/probe", headers=headers)
        assert r.status_code == 204


async def test_approved_request_gets_a_hashed_key_named_after_the_app_once(env: Env) -> None:
    token = await ask(env)
    r = await env.client.get(f"/plugin/appkeys/request/{token}")
    assert r.status_code == 202 and set(r.json()) == {"message"}
    (user_token, request), *_ = (await pending(env)).items()
    assert request == {"app_id": "Home Assistant", "remote_address": "127.0.0.1", "user_id": None,
                       "user_token": user_token}  # fmt: skip
    r = await env.client.post(
        f"/plugin/appkeys/decision/{user_token}", json={"decision": True}, headers=env.auth()
    )
    assert r.status_code == 204
    r = await env.client.get(f"/plugin/appkeys/request/{token}")
    assert r.status_code == 200
    key = r.json()["api_key"]
    assert env.store.accounts.user_for_key(key).name == "admin"  # type: ignore[union-attr]
    assert [k.name for k in env.store.accounts.list_keys("admin")][-1] == "Home Assistant"
    assert key not in (env.tmp / "sysmenu.db").read_bytes().decode("latin-1")
    r = await env.client.get("/api/system/commands", headers={"X-Api-Key": key})
    assert r.status_code == 200
    assert (await env.client.get(f"/plugin/appkeys/request/{token}")).status_code == 404  # handed out once
    events = [a["event"] for a in env.store.audit.list()]
    assert {"appkey_request", "appkey_approved", "appkey_issued"} <= set(events)


async def test_denied_request_is_404_and_audited(env: Env) -> None:
    token = await ask(env, "Nosy app")
    (user_token,) = await pending(env)
    r = await env.client.post(
        f"/plugin/appkeys/decision/{user_token}", json={"decision": False}, headers=env.auth()
    )
    assert r.status_code == 204
    assert (await env.client.get(f"/plugin/appkeys/request/{token}")).status_code == 404
    (denied,) = [a for a in env.store.audit.list() if a["event"] == "appkey_denied"]
    assert denied["user"] == "admin" and denied["detail"]["app"] == "Nosy app"
    assert [k.name for k in env.store.accounts.list_keys("admin")] == ["default"]


async def test_decisions_need_an_admin_or_the_named_user(env: Env) -> None:
    await ask(env, "No user named")
    (anyone,) = await pending(env)
    assert await pending(env, env.user_key) == {}  # bob is no admin: not his to decide
    url = f"/plugin/appkeys/decision/{anyone}"
    bob = env.auth(env.user_key)
    assert (await env.client.post(url, json={"decision": True})).status_code == 403
    assert (await env.client.post(url, json={"decision": True}, headers=bob)).status_code == 403
    await ask(env, "For bob", user="bob")
    assert list(await pending(env)) == [anyone]  # it names bob: not shown to admin
    (user_token,) = await pending(env, env.user_key)
    url = f"/plugin/appkeys/decision/{user_token}"
    assert (await env.client.post(url, json={"decision": True}, headers=env.auth())).status_code == 404
    assert (await env.client.post(url, json={}, headers=bob)).status_code == 400
    assert (await env.client.post(url, json={"decision": "yes"}, headers=bob)).status_code == 204
    nope = "/plugin/appkeys/decision/nope"
    assert (await env.client.post(nope, json={"decision": 1}, headers=env.auth())).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"user": "x"}',
        b'{"app": ""}',
        b'{"app": 5}',
        b'{"app": "a", "user": 3}',
        b'{"app": "a", "user": {}}',
    ],
)
async def test_bad_requests_are_400(env: Env, body: bytes) -> None:
    r = await env.client.post(
        "/plugin/appkeys/request", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert set(r.json()) == {"error"}


async def test_pending_requests_are_bounded_per_address(env: Env) -> None:
    for _ in range(appkeys.MAX_PENDING_PER_CLIENT):
        await ask(env)
    r = await env.client.post("/plugin/appkeys/request", json={"app": "one too many"})
    assert r.status_code == 429 and "Retry-After" in r.headers


async def test_unpolled_request_expires(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    token = await ask(env)
    later = time.time() + appkeys.POLL_TIMEOUT + 1
    monkeypatch.setattr(appkeys.time, "time", lambda: later)
    assert await pending(env) == {}
    assert (await env.client.get(f"/plugin/appkeys/request/{token}")).status_code == 404


async def test_polled_request_lives_until_the_cutoff(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    token = await ask(env)
    start = time.time()
    for step in range(1, 4):  # polled every 4 s: alive
        monkeypatch.setattr(appkeys.time, "time", lambda step=step: start + 4 * step)
        assert (await env.client.get(f"/plugin/appkeys/request/{token}")).status_code == 202
    monkeypatch.setattr(appkeys.time, "time", lambda: start + appkeys.CUTOFF + 1)
    assert (await env.client.get(f"/plugin/appkeys/request/{token}")).status_code == 404


def test_pending_requests_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "sysmenu.db")
    store.accounts.add_user("ann", ["admins"])
    token, request = AppKeys(store).request("App", None, "192.0.2.7")
    store.close()
    later = time.time() + 60  # the server was down for a minute
    monkeypatch.setattr(appkeys.time, "time", lambda: later)
    store = Store(tmp_path / "sysmenu.db")
    keys = AppKeys(store)
    keys.resume()  # what a starting server does
    assert [r.id for r in keys.pending()] == [request.id]
    assert keys.poll(token) == ("pending", None)
    store.close()


def test_cli_lists_approves_and_denies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data / "sysmenu.db")
    store.accounts.add_user("ann", ["admins"])
    keys = AppKeys(store)
    token, first = keys.request("Home Assistant", None, "192.0.2.7")
    _, second = keys.request("OctoDash", "ann", "192.0.2.8")
    runner, base = CliRunner(), ["--data-dir", str(data)]
    r = runner.invoke(main, [*base, "key", "requests"])
    assert r.exit_code == 0, r.output
    assert "'Home Assistant' from 192.0.2.7" in r.output and "'OctoDash' from 192.0.2.8" in r.output
    r = runner.invoke(main, [*base, "key", "approve", str(first.id)])
    assert r.exit_code == 1 and "--user" in r.output  # names no user
    r = runner.invoke(main, [*base, "key", "approve", str(first.id), "--user", "nobody"])
    assert r.exit_code == 1 and "no user" in r.output
    r = runner.invoke(main, [*base, "key", "approve", str(first.id), "--user", "ann"])
    assert r.exit_code == 0, r.output
    state, key = keys.poll(token)
    assert state == "approved" and key is not None
    assert store.accounts.user_for_key(key).name == "ann"  # type: ignore[union-attr]
    r = runner.invoke(main, [*base, "key", "deny", str(second.id)])
    assert r.exit_code == 0 and "denied" in r.output
    r = runner.invoke(main, [*base, "key", "deny", str(second.id)])
    assert r.exit_code == 1 and "no pending key request" in r.output
    events = {a["event"]: a for a in store.audit.list()}
    assert (
        events["appkey_approved"]["auth"] == "cli" and events["appkey_denied"]["detail"]["app"] == "OctoDash"
    )
    store.close()


async def test_odd_tokens_are_404(env: Env) -> None:
    await ask(env)
    for token in ("grüß", "%00", "x" * 300):
        r = await env.client.post(
            f"/plugin/appkeys/decision/{token}", json={"decision": True}, headers=env.auth()
        )
        assert r.status_code == 404
        assert (await env.client.get(f"/plugin/appkeys/request/{token}")).status_code == 404
