"""Access control: every way a key is presented, and every way it is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from starlette.routing import Route

from sysmenu.app import create_app
from sysmenu.auth import FORBIDDEN
from sysmenu.config import parse
from sysmenu.store import Store
from tests.conftest import CONFIG, Env

pytestmark = pytest.mark.anyio

# Every route that needs a permission (SYSTEM, READ, ADMIN or a rule's allow; a user only
# in `users` has none of them). test_every_route_is_classified keeps this complete.
PROTECTED = [
    ("GET", "/api/system/commands"),
    ("GET", "/api/system/info"),
    ("GET", "/api/system/usage"),
    ("GET", "/api/system/commands/core"),
    ("GET", "/api/system/commands/custom"),
    ("POST", "/api/system/commands/custom/hello"),
    ("POST", "/api/system"),
    ("GET", "/api/status"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/1"),
    ("POST", "/api/runs/1/kill"),
    ("GET", "/api/runs/1/events"),
    ("GET", "/metrics"),  # unless sysmenu.metrics_open
    ("GET", "/api/audit"),
]
# Routes any valid key may call (OctoPrint's: clients call them first, with any key).
ANY_KEY = [
    ("GET", "/api/version"),
    ("GET", "/api/server"),
    ("POST", "/api/logout"),
    ("GET", "/api/job"),
    ("GET", "/api/connection"),
    ("GET", "/api/settings"),
    ("GET", "/api/plugin/appkeys"),
]
# Routes any valid key may call, whose answer with a key is no success: the printer is
# not operational (409), or the request needs a body (tests/test_octoprint_compat.py).
ANY_KEY_NO_SUCCESS = [("GET", "/api/printer"), ("POST", "/api/connection"), ("POST", "/api/util/test")]
# Routes without authentication: the OpenAPI document describes the API, not the config;
# the page logs in (password guessing is limited) and asks who it is; health checkers have no key.
PUBLIC = [
    ("GET", "/api/openapi.json"),
    ("GET", "/api/currentuser"),
    ("POST", "/api/login"),
    ("GET", "/api/health"),
]


async def test_every_route_is_classified(tmp_path: Path) -> None:
    """A new API route must be added to one of the lists above, so the tests below cover it."""
    store = Store(tmp_path / "sysmenu.db")
    app = create_app(parse(CONFIG, "test.yaml"), store)
    store.close()
    everything = PROTECTED + ANY_KEY + ANY_KEY_NO_SUCCESS + PUBLIC
    known = {path.replace("/1", "/{run_id}") for _, path in everything}
    known |= {p.replace("/core", "/{source}").replace("/custom/hello", "/{source}/{action}") for p in known}
    routes = {r.path for r in app.routes if isinstance(r, Route) and r.path.startswith("/api/")}
    assert routes, "no routes found"
    assert routes <= known, f"routes not classified as protected, any-key or public: {routes - known}"


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
    assert env.store.runs.list() == []


@pytest.mark.parametrize(("method", "path"), PROTECTED + ANY_KEY + ANY_KEY_NO_SUCCESS)
async def test_revoked_key_is_403_on_every_endpoint(env: Env, method: str, path: str) -> None:
    key = env.store.accounts.create_key("admin", "soon revoked")
    other = Store(env.tmp / "sysmenu.db")  # revoked by another process (the CLI)
    other.accounts.revoke_key(key[:8])
    other.close()
    r = await env.client.request(method, path, headers={"X-Api-Key": key})
    assert r.status_code == 403
    assert r.json() == {"error": FORBIDDEN}
    assert env.store.runs.list() == []


@pytest.mark.parametrize(("method", "path"), PROTECTED + ANY_KEY + ANY_KEY_NO_SUCCESS)
async def test_refusals_look_alike(env: Env, method: str, path: str) -> None:
    """No key, a wrong key and a key without the permission get the same answer:
    a caller learns nothing about which keys exist."""
    bodies = set()
    for headers in ({}, {"X-Api-Key": "x" * 43}, {"Authorization": "Bearer " + "y" * 43}):
        r = await env.client.request(method, path, headers=headers)
        assert r.status_code == 403
        bodies.add((r.text, r.headers["content-type"]))
    if (method, path) in PROTECTED:
        r = await env.client.request(method, path, headers={"X-Api-Key": env.user_key})
        bodies.add((r.text, r.headers["content-type"]))
    assert bodies == {(f'{{"error": "{FORBIDDEN}"}}', "application/json")}


@pytest.mark.parametrize(("method", "path"), ANY_KEY)
async def test_any_key_endpoints_refuse_no_wrong_and_revoked_keys(env: Env, method: str, path: str) -> None:
    assert (await env.client.request(method, path)).status_code == 403
    assert (await env.client.request(method, path, headers={"X-Api-Key": "nope"})).status_code == 403
    r = await env.client.request(method, path, headers={"X-Api-Key": env.user_key})
    assert r.status_code in (200, 204)
    env.store.accounts.revoke_key(env.user_key[:8])
    assert (await env.client.request(method, path, headers={"X-Api-Key": env.user_key})).status_code == 403


@pytest.mark.parametrize(("method", "path"), PUBLIC)
async def test_public_endpoints_need_no_key_and_reveal_no_config(env: Env, method: str, path: str) -> None:
    for headers in ({}, {"X-Api-Key": "wrong"}, env.auth()):
        r = await env.client.request(method, path, headers=headers)
        assert r.status_code not in (401, 403) and r.status_code < 500, (headers, r.status_code)
        if headers == env.auth():
            continue  # a valid key may be told what it may run (the current user's `may`)
        # neither the configured commands' names nor their command lines
        for secret in ("hello", "echo", "Say hello", "exit 7", "sleep 0.2"):
            assert secret not in r.text, secret


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
    env.store.accounts.revoke_key(env.admin_key[:8])
    assert (await env.client.get(url, headers=env.auth())).status_code == 403


async def test_key_made_by_another_process_is_seen(env: Env) -> None:
    from sysmenu.store import Store

    other = Store(env.tmp / "sysmenu.db")  # the CLI's own connection
    key = other.accounts.create_key("admin", "from cli")
    other.close()
    r = await env.client.get("/api/system/commands", headers={"X-Api-Key": key})
    assert r.status_code == 200


async def test_removed_user_loses_access(env: Env) -> None:
    env.store.accounts.remove_user("admin")
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


def test_keys_and_passwords_are_stored_hashed_in_a_private_directory(tmp_path: Path) -> None:
    from sysmenu.passwords import hash_password, verify_password

    data = tmp_path / "state"
    store = Store(data / "sysmenu.db")
    store.accounts.add_user("carol", ["admins"], hash_password("correct horse"))
    key = store.accounts.create_key("carol")
    store.close()
    assert data.stat().st_mode & 0o777 == 0o700
    raw = b"".join(p.read_bytes() for p in data.iterdir())  # the database, its WAL and index
    assert key.encode() not in raw
    assert b"correct horse" not in raw
    assert hashlib.sha256(key.encode()).hexdigest().encode() in raw
    store = Store(data / "sysmenu.db")
    stored = store.accounts.password_hash("carol")
    assert stored is not None and stored.startswith("$argon2")
    assert verify_password(stored, "correct horse") and not verify_password(stored, "wrong")
    assert store.accounts.user_for_key(key) is not None
    store.close()
