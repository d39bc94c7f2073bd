"""The command lists' fast path answers exactly what the full app would, and only the
plain success case: everything else reaches the full app and its checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from sysmenu.middleware import FastCommandList
from sysmenu.state import State
from tests.conftest import Env, with_test_host

pytestmark = pytest.mark.anyio

PATHS = [
    "/api/system/commands",
    "/api/system/commands/core",
    "/api/system/commands/custom",
    "/api/system/commands/plugin",
]


def state(env: Env) -> State:
    assert env.app is not None
    sysmenu: State = env.app.state.sysmenu
    return sysmenu


@dataclass
class Probe:
    """A fast path in front of the full app that notes every request it passes on:
    a request the fast path answered never reaches the full app."""

    client: httpx.AsyncClient
    passed_on: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def fast_answers(self) -> int:
        return self.requests - len(self.passed_on)


@pytest.fixture
async def probe(env: Env) -> AsyncIterator[Probe]:
    full = env.app
    assert full is not None

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        probe.passed_on.append(scope["path"])
        await full(scope, receive, send)

    async def count(request: httpx.Request) -> None:
        probe.requests += 1

    transport = httpx.ASGITransport(app=FastCommandList(inner, state(env)), client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://example.com", event_hooks={"request": [count]}
    ) as client:
        probe = Probe(client)
        yield probe


@pytest.mark.parametrize("path", PATHS)
async def test_fast_answer_is_the_full_apps_answer(env: Env, probe: Probe, path: str) -> None:
    fast = await probe.client.get(path, headers=env.auth())
    assert probe.fast_answers == 1
    # a query string sends the same request through the full app
    full = await probe.client.get(path, params={"unused": "1"}, headers=env.auth())
    assert probe.fast_answers == 1 and len(probe.passed_on) == 1
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
async def test_everything_else_goes_to_the_full_app(
    env: Env, probe: Probe, headers: dict[str, str], status: int
) -> None:
    keys = {"ADMIN": env.admin_key, "USER": env.user_key}
    headers = {k: keys.get(v, v) for k, v in headers.items()}
    r = await probe.client.get("/api/system/commands", headers=headers)
    assert r.status_code == status
    assert probe.passed_on == ["/api/system/commands"] and probe.fast_answers == 0
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


async def test_wrong_keys_still_count_and_a_limited_address_gets_429(env: Env, probe: Probe) -> None:
    for _ in range(10):
        assert (
            await probe.client.get("/api/system/commands", headers={"X-Api-Key": "nope"})
        ).status_code == 403
    r = await probe.client.get("/api/system/commands", headers={"X-Api-Key": "nope"})
    assert r.status_code == 429
    assert probe.fast_answers == 0
    # a valid key is never refused for the address's failures, and stays on the fast path
    r = await probe.client.get("/api/system/commands", headers=env.auth())
    assert r.status_code == 200
    assert probe.fast_answers == 1


async def test_revoked_key_is_refused_at_once(env: Env) -> None:
    assert (await env.client.get("/api/system/commands", headers=env.auth())).status_code == 200
    env.store.accounts.revoke_key(env.admin_key[:8])
    assert (await env.client.get("/api/system/commands", headers=env.auth())).status_code == 403


async def test_config_changes_show_at_once(env: Env) -> None:
    from sysmenu.config import parse

    first = (await env.client.get("/api/system/commands/custom", headers=env.auth())).json()
    state(env).apply(with_test_host(parse("system:\n  actions:\n  - action: only\n    command: 'true'\n")))
    second = (await env.client.get("/api/system/commands/custom", headers=env.auth())).json()
    assert first != second
    assert [c["action"] for c in second] == ["only"]


@pytest.mark.parametrize(
    "path", ["/api/system/commands/", "/api/system/commands/bogus", "/api/system%2Fcommands"]
)
async def test_other_paths_are_not_fast(env: Env, probe: Probe, path: str) -> None:
    r = await probe.client.get(path, headers=env.auth())
    assert r.status_code == 404
    assert probe.fast_answers == 0
