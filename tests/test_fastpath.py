"""The command lists' fast path answers exactly what the full app would, and only the
plain success case: everything else reaches the full app and its checks."""

from __future__ import annotations

import pytest

from sysmenu.app import Sysmenu
from tests.conftest import Env

pytestmark = pytest.mark.anyio

PATHS = [
    "/api/system/commands",
    "/api/system/commands/core",
    "/api/system/commands/custom",
    "/api/system/commands/plugin",
]


def state(env: Env) -> Sysmenu:
    assert env.app is not None
    sysmenu: Sysmenu = env.app.state.sysmenu
    return sysmenu


@pytest.mark.parametrize("path", PATHS)
async def test_fast_answer_is_the_full_apps_answer(env: Env, path: str) -> None:
    before = state(env).fast_answers
    fast = await env.client.get(path, headers=env.auth())
    assert state(env).fast_answers == before + 1
    # a query string sends the same request through the full app
    full = await env.client.get(path, params={"unused": "1"}, headers=env.auth())
    assert state(env).fast_answers == before + 1
    assert fast.status_code == full.status_code == 200
    assert fast.headers.multi_items() == full.headers.multi_items()
    assert fast.content == full.content


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 403),
        ({"X-Api-Key": "wrong"}, 403),
        ({"X-Api-Key": "x" * 300}, 403),
        ({"X-Api-Key": "USER"}, 403),  # a user without SYSTEM
        ({"X-Api-Key": "ADMIN", "X-Forwarded-Host": "pi.example"}, 200),
        ({"X-Api-Key": "ADMIN", "X-Script-Name": "/menu"}, 200),
        ({"X-Api-Key": "ADMIN", "Authorization": "Bearer wrong"}, 200),
        ({"X-Api-Key": "ADMIN", "Content-Length": "200000"}, 413),
    ],
)
async def test_everything_else_goes_to_the_full_app(env: Env, headers: dict[str, str], status: int) -> None:
    keys = {"ADMIN": env.admin_key, "USER": env.user_key}
    headers = {k: keys.get(v, v) for k, v in headers.items()}
    before = state(env).fast_answers
    r = await env.client.get("/api/system/commands", headers=headers)
    assert r.status_code == status
    assert state(env).fast_answers == before
    if status == 200 and "X-Forwarded-Host" in headers:
        assert r.json()["custom"][0]["resource"].startswith("http://pi.example/")
    if status == 200 and "X-Script-Name" in headers:
        assert r.json()["custom"][0]["resource"].startswith("http://example.com/menu/")


async def test_disagreeing_duplicate_keys_are_refused(env: Env) -> None:
    headers = [("X-Api-Key", env.admin_key), ("X-Api-Key", env.user_key)]
    r = await env.client.get("/api/system/commands", headers=headers)
    assert r.status_code == 403
    same = [("X-Api-Key", env.admin_key), ("X-Api-Key", env.admin_key)]
    assert (await env.client.get("/api/system/commands", headers=same)).status_code == 200


async def test_wrong_keys_still_count_and_a_limited_address_gets_429(env: Env) -> None:
    for _ in range(10):
        assert (
            await env.client.get("/api/system/commands", headers={"X-Api-Key": "nope"})
        ).status_code == 403
    before = state(env).fast_answers
    r = await env.client.get("/api/system/commands", headers=env.auth())
    assert r.status_code == 429  # the right key too: the address is limited
    assert state(env).fast_answers == before


async def test_revoked_key_is_refused_at_once(env: Env) -> None:
    assert (await env.client.get("/api/system/commands", headers=env.auth())).status_code == 200
    env.store.revoke_key(env.admin_key[:8])
    assert (await env.client.get("/api/system/commands", headers=env.auth())).status_code == 403


async def test_config_changes_show_at_once(env: Env) -> None:
    from sysmenu.config import parse

    first = (await env.client.get("/api/system/commands/custom", headers=env.auth())).json()
    state(env).apply(parse("system:\n  actions:\n  - action: only\n    command: 'true'\n"))
    second = (await env.client.get("/api/system/commands/custom", headers=env.auth())).json()
    assert first != second
    assert [c["action"] for c in second] == ["only"]


@pytest.mark.parametrize(
    "path", ["/api/system/commands/", "/api/system/commands/bogus", "/api/system%2Fcommands"]
)
async def test_other_paths_are_not_fast(env: Env, path: str) -> None:
    before = state(env).fast_answers
    r = await env.client.get(path, headers=env.auth())
    assert r.status_code == 404
    assert state(env).fast_answers == before
