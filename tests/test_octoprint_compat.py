"""The no-printer endpoints client programs call at start-up (in-process).

Shapes and status codes as a real OctoPrint 1.11.8 with no printer answered them
(probed side by side; see docs/compatibility.md)."""

from __future__ import annotations

import asyncio

import pytest

from sysmenu.auth import FORBIDDEN
from tests.conftest import Env, until

pytestmark = pytest.mark.anyio

JSON = {"Content-Type": "application/json"}
KEYED = [
    ("GET", "/api/job", None),
    ("GET", "/api/printer", None),
    ("GET", "/api/connection", None),
    ("POST", "/api/connection", {"command": "connect"}),
    ("GET", "/api/settings", None),
    ("POST", "/api/util/test", {"command": "address"}),
    ("GET", "/api/system/info", None),
    ("GET", "/api/system/usage", None),
]


@pytest.mark.parametrize(("method", "path", "body"), KEYED)
async def test_credentials_are_checked_first(env: Env, method: str, path: str, body: object) -> None:
    for headers in ({}, {"X-Api-Key": "wrong"}):
        r = await env.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 403, (path, headers)
        assert r.json() == {"error": FORBIDDEN}


async def test_job_is_offline_with_every_field_null(env: Env) -> None:
    r = await env.client.get("/api/job", headers=env.auth(env.user_key))
    assert r.status_code == 200
    body = r.json()
    assert body["state"] == "Offline"
    assert body["job"]["file"] == {"date": None, "name": None, "origin": None, "path": None, "size": None}
    assert set(body["progress"]) == {
        "completion",
        "filepos",
        "printTime",
        "printTimeLeft",
        "printTimeLeftOrigin",
    }


async def test_printer_is_not_operational_409(env: Env) -> None:
    r = await env.client.get("/api/printer", headers=env.auth())
    assert r.status_code == 409
    assert set(r.json()) == {"error"}


async def test_connection_is_closed_with_no_ports(env: Env) -> None:
    r = await env.client.get("/api/connection", headers=env.auth(env.user_key))
    assert r.status_code == 200
    body = r.json()
    assert body["current"] == {
        "baudrate": None,
        "port": None,
        "printerProfile": "_default",
        "state": "Closed",
    }
    assert body["options"]["ports"] == [] and body["options"]["printerProfiles"][0]["id"] == "_default"


@pytest.mark.parametrize("command", ["connect", "disconnect", "fake_ack"])
async def test_connection_commands_are_accepted(env: Env, command: str) -> None:
    r = await env.client.post("/api/connection", json={"command": command, "save": False}, headers=env.auth())
    assert r.status_code == 204
    r = await env.client.get("/api/connection", headers=env.auth())
    assert r.json()["current"]["state"] == "Closed"  # nothing to connect to


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [(b'{"command": "bogus"}', JSON, 400), (b"{}", JSON, 400), (b"[1]", JSON, 400), (b"{", JSON, 400),
     (b'{"command": "connect"}', {"Content-Type": "text/plain"}, 415)],
)  # fmt: skip
async def test_connection_bad_commands(
    env: Env, content: bytes, headers: dict[str, str], status: int
) -> None:
    r = await env.client.post("/api/connection", content=content, headers=env.auth() | headers)
    assert r.status_code == status
    assert set(r.json()) == {"error"}


async def test_settings_hold_no_secret(env: Env) -> None:
    r = await env.client.get("/api/settings", headers=env.auth(env.user_key))
    assert r.status_code == 200
    body = r.json()
    assert body["webcam"]["webcamEnabled"] is False
    assert set(body["plugins"]) == {"discovery"}
    uuid = body["plugins"]["discovery"]["upnpUuid"]
    assert len(uuid) == 36
    assert (await env.client.get("/api/settings", headers=env.auth())).json()["plugins"]["discovery"][
        "upnpUuid"
    ] == uuid
    text = r.text
    assert "key" not in body["api"]
    for secret in (env.admin_key, env.user_key, "echo", "exit 7", str(env.tmp)):
        assert secret not in text, secret


async def test_util_test_address(env: Env) -> None:
    r = await env.client.post("/api/util/test", json={"command": "address"}, headers=env.auth())
    assert r.status_code == 200
    assert r.json() == {"address": "127.0.0.1", "is_lan_address": True, "subnet": "127.0.0.0/8"}
    r = await env.client.post(
        "/api/util/test", json={"command": "address", "address": "8.8.8.8"}, headers=env.auth()
    )
    assert r.json() == {"address": "8.8.8.8", "is_lan_address": False}
    r = await env.client.post("/api/util/test", json={"command": "path", "path": "/"}, headers=env.auth())
    assert r.status_code == 400
    for odd in ({}, [], 3):
        r = await env.client.post(
            "/api/util/test", json={"command": "address", "address": odd}, headers=env.auth()
        )
        assert r.status_code == 400
    r = await env.client.get("/api/util/test", headers=env.auth())
    assert r.status_code == 405  # POST only, as in OctoPrint
    r = await env.client.put("/api/connection", headers=env.auth())
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


async def test_system_info_and_usage_need_system(env: Env) -> None:
    for path in ("/api/system/info", "/api/system/usage"):
        assert (await env.client.get(path, headers=env.auth(env.user_key))).status_code == 403
    r = await env.client.get("/api/system/info", headers=env.auth() | {"User-Agent": "probe/1"})
    assert r.status_code == 200
    info = r.json()["systeminfo"]
    assert info["browser.user_agent"] == "probe/1"
    assert info["env.hardware.cores"] >= 1 and info["env.hardware.ram"] > 0
    assert info["env.os.id"] == "linux" and info["env.python.version"].count(".") == 2
    assert info["octoprint.version"] == "1.11.8" and info["systeminfo.generator"] == "sysmenu"
    r = await env.client.get("/api/system/usage", headers=env.auth())
    usage = r.json()["usage"]
    assert set(usage) == {"data", "root", "memory"}
    for entry in usage.values():
        assert 0 <= entry["free"] <= entry["total"]


async def test_passive_login_with_a_key_is_the_keys_user(env: Env) -> None:
    r = await env.client.post("/api/login", json={"passive": True}, headers=env.auth())
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "admin" and body["admin"] is True and body["active"] is True
    assert body["apikey"] is None  # kept hashed: never shown
    assert body["_login_mechanism"] == "apikey"
    r = await env.client.post("/api/login", json={"passive": True}, headers=env.auth(env.user_key))
    assert r.json()["name"] == "bob" and r.json()["admin"] is False
    for headers in ({}, {"X-Api-Key": "wrong"}):
        r = await env.client.post("/api/login", json={"passive": True}, headers=headers)
        assert r.status_code == 403


async def test_logout_answers_200_json(env: Env) -> None:
    r = await env.client.post("/api/logout", headers=env.auth())
    assert r.status_code == 200
    assert r.json() == {"name": None, "groups": [], "permissions": []}


async def test_login_path_serves_the_page(env: Env) -> None:
    r = await env.client.get("/login")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.text == (await env.client.get("/")).text


@pytest.mark.parametrize("path", ["/api/nosuch", "/api/printer/nosuch", "/plugin/nosuch", "/api/files/local"])
async def test_paths_octoprint_lacks_stay_404(env: Env, path: str) -> None:
    for headers in ({}, env.auth()):
        assert (await env.client.get(path, headers=headers)).status_code == 404


async def test_body_up_to_100_kib_is_accepted(env: Env) -> None:
    url = "/api/system/commands/custom/hello"
    r = await env.client.post(url, content=b" " * (100 * 1024), headers=env.auth() | JSON)
    assert r.status_code == 204
    r = await env.client.post(url, content=b" " * (100 * 1024 + 1), headers=env.auth() | JSON)
    assert r.status_code == 413


async def test_form_encoded_apikey_is_accepted(env: Env) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    url = "/api/system/commands/custom/hello"
    r = await env.client.post(url, content=f"apikey={env.admin_key}".encode(), headers=form)
    assert r.status_code == 204
    r = await env.client.post(url, content=b"apikey=wrong", headers=form)
    assert r.status_code == 403
    # the body's key comes before the header's, as in OctoPrint
    r = await env.client.post(url, content=b"apikey=wrong", headers=form | env.auth())
    assert r.status_code == 403
    # the legacy endpoint still finds its action in the same form body
    r = await env.client.post(
        "/api/system", content=f"action=hello&apikey={env.admin_key}".encode(), headers=form
    )
    assert r.status_code == 204
    assert [run.action for run in env.store.runs.list()] == ["hello", "hello"]


@pytest.mark.config(
    """\
system:
  actions:
    - action: empty
      name: Empty command
      command: ''
"""
)
async def test_empty_command_runs_and_answers_204(env: Env) -> None:
    r = await env.client.post("/api/system/commands/custom/empty", headers=env.auth())
    assert r.status_code == 204
    (run,) = env.store.runs.list()
    assert run.state == "ok"


QUEUEING = """\
system:
  actions:
    - action: slow_async
      name: Slow, async
      command: "mkdir lock-a && until [ -e {tmp}/go ]; do sleep 0.01; done && rmdir lock-a"
      async: true
    - action: slow_sync
      name: Slow, sync
      command: "mkdir lock-s && until [ -e {tmp}/go ]; do sleep 0.01; done && rmdir lock-s"
    - action: refuses
      name: Refuses a second run
      command: "sleep 0.3"
      queue: false
"""


@pytest.mark.config(QUEUEING)
async def test_default_is_one_at_a_time_queued(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """No concurrency/queue in the config: a repeated request is answered as OctoPrint answers
    it (204), and the runs take turns (the lock directory would fail an overlapping run)."""
    monkeypatch.chdir(env.tmp)
    url = "/api/system/commands/custom/"
    first = await env.client.post(url + "slow_async", headers=env.auth())
    second = await env.client.post(url + "slow_async", headers=env.auth())
    assert (first.status_code, second.status_code) == (204, 204)
    assert len(env.store.runs.list(action="slow_async")) == 1  # the second waits for its turn
    posts = [asyncio.create_task(env.client.post(url + "slow_sync", headers=env.auth())) for _ in range(2)]
    runner = env.app.state.sysmenu.runner  # type: ignore[union-attr]
    # one run of each command, the second of each waiting for its turn until the gate opens
    await until(lambda: len(runner.running) == 2 and runner.slots.waiting == 2)
    (env.tmp / "go").touch()
    results = await asyncio.gather(*posts)
    assert [r.status_code for r in results] == [204, 204]
    for _ in range(100):
        runs = env.store.runs.list(action="slow_async")
        if len(runs) == 2 and all(r.state != "running" for r in runs):
            break
        await asyncio.sleep(0.05)
    assert [r.state for r in env.store.runs.list(action="slow_async")] == ["ok", "ok"]
    assert [r.state for r in env.store.runs.list(action="slow_sync")] == ["ok", "ok"]


@pytest.mark.config(QUEUEING)
async def test_queue_false_still_answers_409(env: Env) -> None:
    url = "/api/system/commands/custom/refuses"
    first = await env.client.post(url, headers=env.auth() | {"Prefer": "respond-async"})
    assert first.status_code == 202
    assert (await env.client.post(url, headers=env.auth())).status_code == 409
