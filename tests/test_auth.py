"""Access control: every way a key is presented, and every way it is refused."""

from __future__ import annotations

import pytest

from tests.conftest import Env

pytestmark = pytest.mark.anyio

PROTECTED = [
    ("GET", "/api/system/commands"),
    ("GET", "/api/system/commands/core"),
    ("POST", "/api/system/commands/custom/hello"),
    ("POST", "/api/system"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/1"),
    ("POST", "/api/runs/1/kill"),
    ("GET", "/api/runs/1/events"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_no_key_is_403(env: Env, method: str, path: str) -> None:
    r = await env.client.request(method, path)
    assert r.status_code == 403
    assert set(r.json()) == {"error"}


async def test_403_text_is_octoprints(env: Env) -> None:
    for key in (None, "x" * 43, env.user_key):
        headers = {"X-Api-Key": key} if key else {}
        r = await env.client.get("/api/system/commands", headers=headers)
        assert r.json() == {
            "error": "You don't have the permission to access the requested resource. "
            "It is either read-protected or not readable by the server."
        }


async def test_query_key_comes_first_as_in_octoprint(env: Env) -> None:
    url = "/api/system/commands"
    r = await env.client.get(url, params={"apikey": "x" * 43}, headers=env.auth())
    assert r.status_code == 403
    r = await env.client.get(url, params={"apikey": env.admin_key}, headers=env.auth("x" * 43))
    assert r.status_code == 200
    bearer = {"Authorization": f"Bearer {env.admin_key}"}
    r = await env.client.get(url, params={"apikey": "x" * 43}, headers=bearer)
    assert r.status_code == 403
    r = await env.client.get(f"{url}?apikey=&x=1", headers=env.auth())  # empty: not a key
    assert r.status_code == 200


async def test_disagreeing_query_keys_are_refused(env: Env) -> None:
    url = f"/api/system/commands?apikey={env.admin_key}&apikey={'x' * 43}"
    r = await env.client.get(url)
    assert r.status_code == 403


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_wrong_key_is_403(env: Env, method: str, path: str) -> None:
    r = await env.client.request(method, path, headers={"X-Api-Key": "x" * 43})
    assert r.status_code == 403


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_user_without_system_is_403(env: Env, method: str, path: str) -> None:
    r = await env.client.request(method, path, headers={"X-Api-Key": env.user_key})
    assert r.status_code == 403
    assert env.store.list_runs() == []


async def test_key_in_header_bearer_and_query(env: Env) -> None:
    url = "/api/system/commands"
    assert (await env.client.get(url, headers={"X-Api-Key": env.admin_key})).status_code == 200
    bearer = {"Authorization": f"Bearer {env.admin_key}"}
    assert (await env.client.get(url, headers=bearer)).status_code == 200
    assert (await env.client.get(url, params={"apikey": env.admin_key})).status_code == 200


async def test_key_with_right_prefix_but_wrong_rest_is_403(env: Env) -> None:
    forged = env.admin_key[:8] + ("A" if env.admin_key[8] != "A" else "B") + env.admin_key[9:]
    r = await env.client.get("/api/system/commands", headers={"X-Api-Key": forged})
    assert r.status_code == 403


async def test_revoked_key_is_403_at_once(env: Env) -> None:
    url = "/api/system/commands"
    assert (await env.client.get(url, headers=env.auth())).status_code == 200
    env.store.revoke_key(env.admin_key[:8])
    assert (await env.client.get(url, headers=env.auth())).status_code == 403


async def test_key_made_by_another_process_is_seen(env: Env) -> None:
    from sysmenu.store import Store

    other = Store(env.tmp / "sysmenu.db")  # the CLI's own connection
    key = other.create_key("admin", "from cli")
    other.close()
    r = await env.client.get("/api/system/commands", headers={"X-Api-Key": key})
    assert r.status_code == 200


async def test_removed_user_loses_access(env: Env) -> None:
    env.store.remove_user("admin")
    r = await env.client.get("/api/system/commands", headers=env.auth())
    assert r.status_code == 403


@pytest.mark.parametrize("value", ["", " ", "k" * 10_000, "Bearer"])
async def test_odd_key_values_are_403(env: Env, value: str) -> None:
    r = await env.client.get("/api/system/commands", headers={"X-Api-Key": value})
    assert r.status_code == 403


async def test_bearer_scheme_case_and_other_schemes(env: Env) -> None:
    ok = await env.client.get("/api/system/commands", headers={"Authorization": f"bearer {env.admin_key}"})
    assert ok.status_code == 200
    basic = await env.client.get("/api/system/commands", headers={"Authorization": f"Basic {env.admin_key}"})
    assert basic.status_code == 403


async def test_version_needs_a_valid_key(env: Env) -> None:
    r = await env.client.get("/api/version")
    assert r.status_code == 403
    r = await env.client.get("/api/version", headers={"X-Api-Key": env.user_key})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"api", "server", "text"}
    assert body["api"] == "0.1"
