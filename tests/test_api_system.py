"""The System API, response for response (in-process)."""

from __future__ import annotations

import pytest

from tests.conftest import Env

pytestmark = pytest.mark.anyio

BASE = "http://example.com/api/system/commands"


async def test_list_all_has_three_sources(env: Env) -> None:
    r = await env.client.get("/api/system/commands", headers=env.auth())
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["core", "custom", "plugin"]
    assert body["plugin"] == []
    assert [s["action"] for s in body["core"]] == ["shutdown", "reboot", "restart", "restart_safe"]


async def test_core_specs_shape(env: Env) -> None:
    r = await env.client.get("/api/system/commands/core", headers=env.auth())
    assert r.status_code == 200
    shutdown, reboot, restart, restart_safe = r.json()
    assert set(shutdown) == {"action", "name", "confirm", "source", "resource", "fresh_credentials"}
    assert shutdown["fresh_credentials"] is True and reboot["fresh_credentials"] is True
    assert "fresh_credentials" not in restart and "fresh_credentials" not in restart_safe
    assert shutdown["resource"] == f"{BASE}/core/shutdown"
    assert "command" not in shutdown


async def test_custom_specs_never_show_command_lines(env: Env) -> None:
    r = await env.client.get("/api/system/commands/custom", headers=env.auth())
    for spec in r.json():
        assert "command" not in spec and "async" not in spec and "ignore" not in spec


async def test_custom_specs_and_dividers(env: Env) -> None:
    r = await env.client.get("/api/system/commands/custom", headers=env.auth())
    specs = r.json()
    assert specs[0] == {
        "action": "hello",
        "name": "Say hello",
        "source": "custom",
        "resource": f"{BASE}/custom/hello",
    }
    dividers = [s for s in specs if s["action"] == "divider"]
    assert len(dividers) == 2
    for divider in dividers:
        assert set(divider) == {"action", "source", "resource"}
        assert divider["source"] == "custom"
    assert [s["action"] for s in specs].index("divider") == 1
    fail = specs[2]
    assert fail["confirm"] == "Really fail?"


async def test_duplicate_action_is_listed_twice_and_first_runs(env: Env) -> None:
    r = await env.client.get("/api/system/commands/custom", headers=env.auth())
    hellos = [s for s in r.json() if s["action"] == "hello"]
    assert [h["name"] for h in hellos] == ["Say hello", "Duplicate hello"]
    r = await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
    assert r.status_code == 204
    (run,) = env.store.list_runs(action="hello")
    assert env.store.get_run(run["id"])["stdout"] == "hello\n"  # type: ignore[index]


async def test_unicode_names_and_actions(env: Env) -> None:
    r = await env.client.get("/api/system/commands/custom", headers=env.auth())
    spec = next(s for s in r.json() if s["action"] == "grüß")
    assert spec["name"] == "Grüße ☕"
    r = await env.client.post("/api/system/commands/custom/gr%C3%BC%C3%9F", headers=env.auth())
    assert r.status_code == 204


async def test_unknown_source_is_404(env: Env) -> None:
    r = await env.client.get("/api/system/commands/bogus", headers=env.auth())
    assert r.status_code == 404
    assert "error" in r.json()


async def test_trailing_slash_is_404_not_redirect(env: Env) -> None:
    for path in ("/api/system/commands/", "/api/system/commands/custom/"):
        r = await env.client.get(path, headers=env.auth())
        assert r.status_code == 404, path
        assert "error" in r.json()


async def test_double_slashes_are_collapsed(env: Env) -> None:
    r = await env.client.get("http://example.com//api/system/commands", headers=env.auth())
    assert r.status_code == 200
    assert "core" in r.json()
    r = await env.client.post("http://example.com//api//system/commands/custom/hello", headers=env.auth())
    assert r.status_code == 204


async def test_resource_urls_follow_host_and_trusted_proxy(env: Env) -> None:
    headers = env.auth() | {"Host": "pi.local:8080"}
    r = await env.client.get("/api/system/commands/custom", headers=headers)
    assert r.json()[0]["resource"] == "http://pi.local:8080/api/system/commands/custom/hello"
    headers = env.auth() | {
        "X-Forwarded-Host": "menu.example.org",
        "X-Forwarded-Proto": "https",
        "X-Script-Name": "/sysmenu",
    }
    r = await env.client.get("/api/system/commands/custom", headers=headers)
    assert r.json()[0]["resource"] == "https://menu.example.org/sysmenu/api/system/commands/custom/hello"
    headers = env.auth() | {"X-Forwarded-Prefix": "/p/"}
    r = await env.client.get("/api/system/commands/custom", headers=headers)
    assert r.json()[0]["resource"] == "http://example.com/p/api/system/commands/custom/hello"
