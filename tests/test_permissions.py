"""Who may do what, over HTTP: group x command x endpoint, rules, key scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sysmenu.access import Scope
from sysmenu.app import create_app
from sysmenu.config import parse
from sysmenu.store import Store
from tests.conftest import with_test_host

pytestmark = pytest.mark.anyio

CONFIG = """\
server:
  commands:
    systemShutdownCommand: "true"
    systemRestartCommand: "true"
system:
  actions:
    - action: media
      name: Restart media
      command: echo media
      allow: [family]
    - action: divider
    - action: backup
      name: Backup
      command: echo backup
    - action: status
      name: Status
      command: echo status
      allow: [monitoring]
sysmenu:
  groups:
    family: []
    monitoring: [READ]
  core_access:
    shutdown:
      deny: [kiosk]
"""
ALL = {"core:shutdown", "core:reboot", "custom:media", "custom:backup", "custom:status"}


@dataclass
class Who:
    """A caller and what it should be able to do."""

    groups: list[str]
    runs: set[str]
    sees: set[str]
    reads_all: bool = False
    audit: bool = False
    scope: tuple[bool, list[str] | None] = (False, None)
    key: str = field(default="", repr=False)


CALLERS = {
    "root": Who(["admins"], ALL, ALL, reads_all=True, audit=True),
    "op": Who(["operators"], ALL, ALL, reads_all=True),
    "kiosk": Who(["operators"], ALL - {"core:shutdown"}, ALL - {"core:shutdown"}, reads_all=True),
    "viewer": Who(["viewers"], set(), ALL, reads_all=True),
    "mum": Who(["family"], {"custom:media"}, {"custom:media"}),
    "nagios": Who(["monitoring"], {"custom:status"}, ALL, reads_all=True),
    "plain": Who(["users"], set(), set()),
    # keys of root narrowed by a scope
    "root-read": Who(["admins"], set(), ALL, reads_all=True, scope=(True, None)),
    "root-only": Who(["admins"], {"custom:backup"}, {"custom:backup"}, scope=(False, ["custom:backup"])),
    # a read key of the family sees what the family may run, runs nothing
    "mum-read": Who(["family"], set(), {"custom:media"}, scope=(True, None)),
}


@dataclass
class World:
    client: httpx.AsyncClient
    store: Store
    runs: dict[str, int]  # command -> id of a finished run of it


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    store = Store(tmp_path_factory.mktemp("perm") / "sysmenu.db")
    config = with_test_host(parse(CONFIG, "perm.yaml"))
    for name, who in CALLERS.items():
        user = name.split("-")[0]
        if store.accounts.get_user(user) is None:
            store.accounts.add_user(user, who.groups, config_groups=config.sysmenu.groups)
        who.key = store.accounts.create_key(user, name, scope=Scope.text(*who.scope))
    app = create_app(config, store)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://example.com") as client:
            runs = {}
            for command in sorted(ALL):
                source, action = command.split(":")
                r = await client.post(
                    f"/api/system/commands/{source}/{action}",
                    headers={"X-Api-Key": CALLERS["root"].key, "Prefer": "respond-async"},
                )
                assert r.status_code == 202, r.text
                runs[command] = r.json()["id"]
                # the event stream ends when the run does
                await client.get(f"/api/runs/{runs[command]}/events", headers=auth("root"))
            yield World(client, store, runs)
    store.close()


def auth(name: str) -> dict[str, str]:
    return {"X-Api-Key": CALLERS[name].key}


def listed(data: dict[str, list[dict[str, str]]] | list[dict[str, str]]) -> set[str]:
    specs = data if isinstance(data, list) else [s for source in data.values() for s in source]
    return {f"{s['source']}:{s['action']}" for s in specs if s["action"] != "divider"}


@pytest.mark.parametrize("name", CALLERS)
async def test_permission_matrix(world: World, name: str) -> None:
    who, client = CALLERS[name], world.client
    # the full list
    r = await client.get("/api/system/commands", headers=auth(name))
    if who.sees or who.reads_all:
        assert r.status_code == 200 and listed(r.json()) == who.sees
        assert set(r.json()) == {"core", "custom", "plugin"}
    else:
        assert r.status_code == 403
    # per source: a source with nothing to see is 403 for those who read nothing
    for source in ("core", "custom"):
        r = await client.get(f"/api/system/commands/{source}", headers=auth(name))
        mine = {c for c in who.sees if c.startswith(source)}
        if mine or who.reads_all:
            assert r.status_code == 200 and listed(r.json()) == mine, (source, r.text)
        else:
            assert r.status_code == 403
    # history
    r = await client.get("/api/runs", params={"limit": 200}, headers=auth(name))
    readable = ALL if who.reads_all else who.sees
    if readable:
        assert r.status_code == 200
        assert {f"{x['source']}:{x['action']}" for x in r.json()["runs"]} == readable
    else:
        assert r.status_code == 403
    for command, run_id in world.runs.items():
        r = await client.get(f"/api/runs/{run_id}", headers=auth(name))
        assert r.status_code == (200 if command in readable else 403), (command, r.text)
        r = await client.get(f"/api/runs/{run_id}/events", headers=auth(name))
        assert r.status_code == (200 if command in readable else 403), command
        # killing a finished run: 409 for who may kill it, 403 for who may not
        r = await client.post(f"/api/runs/{run_id}/kill", headers=auth(name))
        may_kill = command in who.runs or name in ("root", "op", "kiosk")  # SYSTEM, no scope
        assert r.status_code == (409 if may_kill else 403), (command, r.text)
    assert (await client.get("/api/status", headers=auth(name))).status_code == (
        200 if who.reads_all else 403
    )
    assert (await client.get("/api/audit", headers=auth(name))).status_code == (200 if who.audit else 403)
    # what the page is told
    me = (await client.get("/api/currentuser", headers=auth(name))).json()
    assert set(me["may"]["run"]) == who.runs
    assert me["may"]["audit"] == who.audit
    # running: each command, allowed or not
    for command in sorted(ALL):
        source, action = command.split(":")
        r = await client.post(f"/api/system/commands/{source}/{action}", headers=auth(name))
        assert r.status_code == (204 if command in who.runs else 403), (command, r.text)
        if r.status_code == 403:
            assert r.json() == {"error": r.json()["error"]}
    legacy = await client.post("/api/system", json={"action": "media"}, headers=auth(name))
    assert legacy.status_code == (204 if "custom:media" in who.runs else 403)


async def test_allow_lists_only_what_may_run(world: World) -> None:
    r = await world.client.get("/api/system/commands", headers=auth("mum"))
    assert r.json()["core"] == [] and r.json()["plugin"] == []
    assert [s["action"] for s in r.json()["custom"]] == ["media"]  # no divider at an edge
    assert (await world.client.get("/api/system/commands/core", headers=auth("mum"))).status_code == 403
    assert (await world.client.get("/api/system/commands/plugin", headers=auth("mum"))).status_code == 403
    assert (await world.client.get("/api/system/commands/nowhere", headers=auth("mum"))).status_code == 403
    assert (await world.client.get("/api/system/commands/nowhere", headers=auth("viewer"))).status_code == 404


async def test_deny_hides_and_refuses_even_for_system(world: World) -> None:
    r = await world.client.get("/api/system/commands/core", headers=auth("kiosk"))
    assert [s["action"] for s in r.json()] == ["reboot"]
    r = await world.client.post("/api/system/commands/core/shutdown", headers=auth("kiosk"))
    assert r.status_code == 403
    # an operator who is not denied sees OctoPrint's list, byte for byte the admin's
    mine = await world.client.get("/api/system/commands", headers=auth("op"))
    admins = await world.client.get("/api/system/commands", headers=auth("root"))
    assert mine.content == admins.content


async def test_unknown_commands_are_404_for_system_and_403_for_others(world: World) -> None:
    r = await world.client.post("/api/system/commands/custom/nothing", headers=auth("op"))
    assert r.status_code == 404
    r = await world.client.post("/api/system/commands/custom/nothing", headers=auth("mum"))
    assert r.status_code == 403


async def test_read_scoped_key_runs_nothing(world: World) -> None:
    r = await world.client.post("/api/system/commands/custom/backup", headers=auth("root-read"))
    assert r.status_code == 403
    r = await world.client.get("/api/runs", headers=auth("root-read"))
    assert r.status_code == 200 and r.json()["runs"]
    assert (await world.client.get("/api/audit", headers=auth("root-read"))).status_code == 403


async def test_only_scoped_key_runs_just_those(world: World) -> None:
    r = await world.client.post("/api/system/commands/custom/backup", headers=auth("root-only"))
    assert r.status_code == 204
    for other in ("custom/status", "custom/media", "core/reboot"):
        r = await world.client.post(f"/api/system/commands/{other}", headers=auth("root-only"))
        assert r.status_code == 403, other


async def test_key_list_shows_scopes(world: World) -> None:
    scopes = {k.name: k.scope for k in world.store.accounts.list_keys()}
    assert scopes["root-read"] == "read" and scopes["root-only"] == "only:custom:backup"
    assert scopes["root"] is None
