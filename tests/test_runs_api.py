"""sysmenu's run API: history, one run, kill, events, Prefer: respond-async, Idempotency-Key."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import CONFIG, Env, until

pytestmark = pytest.mark.anyio

SLOW = (
    CONFIG
    + """\
    - action: slow
      name: Slow
      command: "echo begin; sleep 30"
      queue: false
    - action: queued
      name: Queued
      command: "until [ -e {tmp}/go ]; do sleep 0.01; done"
      queue: true
    - action: gated
      name: Goes on when the test says so
      command: "until [ -e {tmp}/go ]; do sleep 0.01; done; echo done"
      async: true
    - action: short
      name: Short timeout
      command: "sleep 30"
      timeout: 0.05
"""
)


async def wait_state(env: Env, run_id: int, timeout: float = 10.0) -> dict[str, object]:
    for _ in range(int(timeout / 0.05)):
        r = await env.client.get(f"/api/runs/{run_id}", headers=env.auth())
        if r.json()["state"] != "running":
            return dict(r.json())
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still running")


async def test_prefer_respond_async_gives_202_and_location(env: Env) -> None:
    headers = env.auth() | {"Prefer": "respond-async"}
    r = await env.client.post("/api/system/commands/custom/fail", headers=headers)
    assert r.status_code == 202
    run_id = r.json()["id"]
    assert r.headers["location"] == f"http://example.com/api/runs/{run_id}"
    run = await wait_state(env, run_id)
    assert run["state"] == "failed" and run["returncode"] == 3
    assert run["stdout"] == "out\n" and run["stderr"] == "err\n"
    assert "pid" not in run and "idempotency_key" not in run


async def test_list_runs_newest_first_filtered_and_paged(env: Env) -> None:
    for action in ("hello", "fail", "hello", "ignored"):
        await env.client.post(f"/api/system/commands/custom/{action}", headers=env.auth())
    r = await env.client.get("/api/runs", headers=env.auth())
    ids = [run["id"] for run in r.json()["runs"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4
    assert "stdout" not in r.json()["runs"][0]
    r = await env.client.get("/api/runs", params={"action": "hello"}, headers=env.auth())
    assert [run["action"] for run in r.json()["runs"]] == ["hello", "hello"]
    r = await env.client.get("/api/runs", params={"state": "failed"}, headers=env.auth())
    assert {run["action"] for run in r.json()["runs"]} == {"fail"}  # an ignored failure is ok
    r = await env.client.get("/api/runs", params={"limit": 3}, headers=env.auth())
    page = r.json()
    assert len(page["runs"]) == 3
    r = await env.client.get(page["next"], headers=env.auth())
    assert [run["id"] for run in r.json()["runs"]] == [ids[3]]
    assert "next" not in r.json()


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "x"}, {"limit": "201"}, {"state": "weird"}, {"before": "-1"}]
)
async def test_bad_list_parameters_are_400(env: Env, params: dict[str, str]) -> None:
    r = await env.client.get("/api/runs", params=params, headers=env.auth())
    assert r.status_code == 400
    assert set(r.json()) == {"error"}


async def test_unknown_run_is_404(env: Env) -> None:
    huge = 2**70
    for method, path in (
        ("GET", f"/api/runs/{huge}"),
        ("POST", f"/api/runs/{huge}/kill"),
        ("GET", f"/api/runs/{huge}/events"),
        ("GET", "/api/runs/999"),
        ("POST", "/api/runs/999/kill"),
        ("GET", "/api/runs/999/events"),
    ):
        r = await env.client.request(method, path, headers=env.auth())
        assert r.status_code == 404, path
        assert "error" in r.json()


@pytest.mark.config(SLOW)
async def test_kill_a_running_run(env: Env) -> None:
    headers = env.auth() | {"Prefer": "respond-async"}
    r = await env.client.post("/api/system/commands/custom/slow", headers=headers)
    run_id = r.json()["id"]
    for _ in range(200):  # until the command has printed its first line
        r = await env.client.get(f"/api/runs/{run_id}", headers=env.auth())
        if r.json()["stdout"]:
            break
        await asyncio.sleep(0.05)
    assert r.json()["state"] == "running"
    assert r.json()["stdout"] == "begin\n"
    r = await env.client.post(f"/api/runs/{run_id}/kill", headers=env.auth())
    assert r.status_code == 202
    run = await wait_state(env, run_id)
    assert run["state"] == "killed"
    r = await env.client.post(f"/api/runs/{run_id}/kill", headers=env.auth())
    assert r.status_code == 409
    assert any(a["event"] == "kill" for a in env.store.audit.list())


@pytest.mark.config(SLOW)
async def test_second_request_while_running_is_409_naming_the_run(env: Env) -> None:
    headers = env.auth() | {"Prefer": "respond-async"}
    first = (await env.client.post("/api/system/commands/custom/slow", headers=headers)).json()
    r = await env.client.post("/api/system/commands/custom/slow", headers=env.auth())
    assert r.status_code == 409
    assert f"run {first['id']}" in r.json()["error"]
    await env.client.post(f"/api/runs/{first['id']}/kill", headers=env.auth())


@pytest.mark.config(SLOW)
async def test_queue_true_waits_instead_of_409(env: Env) -> None:
    url = "/api/system/commands/custom/queued"
    posts = [asyncio.create_task(env.client.post(url, headers=env.auth())) for _ in range(3)]
    runner = env.app.state.sysmenu.runner  # type: ignore[union-attr]
    await until(lambda: len(runner.running) == 1 and runner.slots.waiting == 2)  # one runs, two wait
    (env.tmp / "go").touch()
    results = await asyncio.gather(*posts)
    assert [r.status_code for r in results] == [204, 204, 204]
    assert [r.state for r in env.store.runs.list(action="queued")] == ["ok"] * 3


@pytest.mark.config(SLOW)
async def test_timeout_is_a_500_for_a_sync_command(env: Env) -> None:
    r = await env.client.post("/api/system/commands/custom/short", headers=env.auth())
    assert r.status_code == 500
    assert "timed out after 0.05 seconds" in r.json()["error"]
    (run,) = env.store.runs.list(action="short")
    assert run.state == "timeout"


async def test_idempotency_key_returns_the_first_run(env: Env) -> None:
    headers = env.auth() | {"Idempotency-Key": "abc-123"}
    for _ in range(3):
        r = await env.client.post("/api/system/commands/custom/hello", headers=headers)
        assert r.status_code == 204
    assert len(env.store.runs.list(action="hello")) == 1
    for _ in range(2):
        r = await env.client.post(
            "/api/system/commands/custom/fail", headers=env.auth() | {"Idempotency-Key": "k2"}
        )
        assert r.status_code == 500
    assert len(env.store.runs.list(action="fail")) == 1
    async_headers = headers | {"Prefer": "respond-async"}
    r = await env.client.post("/api/system/commands/custom/hello", headers=async_headers)
    assert r.status_code == 202
    assert r.json()["id"] == env.store.runs.list(action="hello")[0].id


async def test_idempotency_key_reused_for_another_command_is_422(env: Env) -> None:
    headers = env.auth() | {"Idempotency-Key": "once"}
    assert (await env.client.post("/api/system/commands/custom/hello", headers=headers)).status_code == 204
    r = await env.client.post("/api/system/commands/custom/fail", headers=headers)
    assert r.status_code == 422
    assert "custom:hello" in r.json()["error"] and "custom:fail" in r.json()["error"]
    assert env.store.runs.list(action="fail") == []


@pytest.mark.config(SLOW)
async def test_parallel_requests_with_one_key_start_one_run(env: Env) -> None:
    """Ten at once to a queued command that is busy: one run, ten answers (the first run's)."""
    url = "/api/system/commands/custom/queued"
    runner = env.app.state.sysmenu.runner  # type: ignore[union-attr]
    blocker = asyncio.create_task(env.client.post(url, headers=env.auth()))  # runs until the gate opens
    await until(lambda: len(runner.running) == 1)
    headers = env.auth() | {"Idempotency-Key": "burst"}
    burst = [asyncio.create_task(env.client.post(url, headers=headers)) for _ in range(10)]
    await until(lambda: runner.slots.waiting == 1)  # the first with the key waits its turn
    (env.tmp / "go").touch()
    answers = await asyncio.gather(*burst)
    assert [r.status_code for r in answers] == [204] * 10
    assert (await blocker).status_code == 204
    assert len(env.store.runs.list(action="queued")) == 2  # the blocker, one for the key
    r = await env.client.post("/api/system/commands/custom/hello", headers=headers)
    assert r.status_code == 422


async def test_idempotency_keys_are_per_user(env: Env) -> None:
    other = env.store.accounts.create_key("admin", "second")
    env.store.accounts.add_user("carol", ["admins"])
    carol = env.store.accounts.create_key("carol")
    for key in (env.admin_key, other, carol):
        r = await env.client.post(
            "/api/system/commands/custom/hello", headers={"X-Api-Key": key, "Idempotency-Key": "same"}
        )
        assert r.status_code == 204
    assert len(env.store.runs.list(action="hello")) == 2


async def test_events_of_a_finished_run(env: Env) -> None:
    await env.client.post("/api/system/commands/custom/fail", headers=env.auth())
    (run,) = env.store.runs.list(action="fail")
    r = await env.client.get(f"/api/runs/{run.id}/events", headers=env.auth())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    assert [e[0] for e in events] == ["start", "output", "output", "end"]
    assert events[1][1] == {"stream": "stdout", "text": "out\n"}
    assert events[-1][1]["state"] == "failed" and events[-1][1]["returncode"] == 3


@pytest.mark.config(SLOW)
async def test_events_of_a_live_run_end_with_its_end(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    headers = env.auth() | {"Prefer": "respond-async"}
    r = await env.client.post("/api/system/commands/custom/gated", headers=headers)
    run_id = r.json()["id"]
    run = env.app.state.sysmenu.runner.running[run_id]  # type: ignore[union-attr]
    following = asyncio.Event()  # the stream follows the live run (it has not ended: the gate is shut)
    subscribe = run.subscribe
    monkeypatch.setattr(run, "subscribe", lambda: (following.set(), subscribe())[1])
    stream = asyncio.ensure_future(env.client.get(f"/api/runs/{run_id}/events", headers=env.auth()))
    await asyncio.wait_for(following.wait(), 10)
    (env.tmp / "go").touch()
    r = await asyncio.wait_for(stream, 10)
    events = parse_sse(r.text)
    assert events[0][0] == "start"
    assert "".join(e[1]["text"] for e in events if e[0] == "output") == "done\n"
    assert events[-1][0] == "end" and events[-1][1]["state"] == "ok"


async def test_openapi_document(env: Env) -> None:
    r = await env.client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/system/commands", "/api/runs", "/api/runs/{run_id}/events"):
        assert path in doc["paths"]


def parse_sse(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events
