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
        "name": "Duplicate hello",
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


async def test_duplicate_action_is_listed_once_and_last_runs(env: Env) -> None:
    # As OctoPrint 1.11.8: one entry, at the first definition's place, with the last definition.
    r = await env.client.get("/api/system/commands/custom", headers=env.auth())
    actions = [s["action"] for s in r.json()]
    assert actions.count("hello") == 1 and actions.index("hello") == 0
    assert r.json()[0]["name"] == "Duplicate hello"
    r = await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
    assert r.status_code == 204
    (run,) = env.store.runs.list(action="hello")
    assert env.store.runs.get(run.id).stdout == "second\n"  # type: ignore[union-attr]


async def test_unicode_names_and_actions(env: Env) -> None:
    r = await env.client.get("/api/system/commands/custom", headers=env.auth())
    spec = next(s for s in r.json() if s["action"] == "grüß")
    assert spec["name"] == "Grüße ☕"
    assert spec["resource"] == f"{BASE}/custom/gr%C3%BC%C3%9F"  # percent-encoded, as OctoPrint
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
    headers = env.auth() | {"Host": "localhost:8080"}
    r = await env.client.get("/api/system/commands/custom", headers=headers)
    assert r.json()[0]["resource"] == "http://localhost:8080/api/system/commands/custom/hello"
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
    headers = env.auth() | {"X-Scheme": "https"}  # OctoPrint's other scheme header
    r = await env.client.get("/api/system/commands/custom", headers=headers)
    assert r.json()[0]["resource"] == "https://example.com/api/system/commands/custom/hello"


async def test_unstripped_prefix_of_a_trusted_proxy_is_stripped(env: Env) -> None:
    # A proxy that announces /octo but passes /octo/api/... on: OctoPrint answers it.
    headers = env.auth() | {"X-Script-Name": "/octo"}
    r = await env.client.get("/octo/api/system/commands/custom", headers=headers)
    assert r.status_code == 200
    assert r.json()[0]["resource"] == "http://example.com/octo/api/system/commands/custom/hello"
    r = await env.client.post("/octo/api/system/commands/custom/hello", headers=headers)
    assert r.status_code == 204
    r = await env.client.get("/api/system/commands/custom", headers=headers)  # stripped: fine too
    assert r.status_code == 200
    r = await env.client.get("/octopus/api/system/commands", headers=headers)  # not the prefix
    assert r.status_code == 404
    r = await env.client.get("/octo/api/system/commands", headers=env.auth())  # no prefix announced
    assert r.status_code == 404


@pytest.mark.config(
    "system:\n  actions:\n"
    "    - action: divider\n      name: Tools\n      confirm: unused\n"
    "    - action: a b/c\n      command: 'true'\n"
    "    - action: divider\n"
)
async def test_divider_name_and_confirm_are_shown_when_given(env: Env) -> None:
    r = await env.client.get("/api/system/commands/custom", headers=env.auth())
    named, spaced, plain = r.json()
    assert named == {
        "action": "divider",
        "name": "Tools",
        "confirm": "unused",
        "source": "custom",
        "resource": f"{BASE}/custom/divider",
    }
    assert plain == {"action": "divider", "source": "custom", "resource": f"{BASE}/custom/divider"}
    assert spaced["resource"] == f"{BASE}/custom/a%20b/c"  # Werkzeug's safe set keeps '/'


@pytest.mark.config(
    "system:\n  actions:\n    - action: hello\n      command: echo hello\n"
    "sysmenu:\n  trusted_proxies: [10.0.0.0/8]\n"
)
async def test_untrusted_peer_announces_no_prefix(env: Env) -> None:
    headers = env.auth() | {"X-Script-Name": "/octo", "X-Scheme": "https"}
    r = await env.client.get("/octo/api/system/commands/custom", headers=headers)
    assert r.status_code == 404
    r = await env.client.get("/api/system/commands/custom", headers=headers)
    assert r.json()[0]["resource"] == "http://example.com/api/system/commands/custom/hello"
