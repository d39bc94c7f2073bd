"""The database thread: the server's SQL runs off the event loop, a locked database
fails only what needs it (503), and a valid key cache answers without the thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sysmenu.app import create_app
from sysmenu.config import parse
from sysmenu.database import Database
from sysmenu.store import Store
from tests.conftest import CONFIG, Env, with_test_host

pytestmark = pytest.mark.anyio


@contextmanager
def statements_by_thread(store: Store) -> Iterator[list[tuple[str, str]]]:
    """(thread name, SQL) of every statement the store's connection runs meanwhile."""
    seen: list[tuple[str, str]] = []
    store.db.conn.set_trace_callback(lambda sql: seen.append((threading.current_thread().name, sql)))
    try:
        yield seen
    finally:
        store.db.conn.set_trace_callback(None)


async def test_the_servers_sql_runs_on_the_database_thread(env: Env) -> None:
    with statements_by_thread(env.store) as seen:
        r = await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
        assert r.status_code == 204
        r = await env.client.post(
            "/api/system/commands/custom/later", headers=env.auth() | {"Prefer": "respond-async"}
        )
        run_id = r.json()["id"]
        assert (await env.client.get("/api/runs", headers=env.auth())).status_code == 200
        assert (await env.client.get(f"/api/runs/{run_id}/events", headers=env.auth())).status_code == 200
        assert (await env.client.get("/api/system/commands", headers=env.auth("wrong"))).status_code == 403
        r = await env.client.post("/api/login", json={"user": "nobody", "pass": "x"})
        assert r.status_code == 403
    statements = [sql for _, sql in seen]
    assert any(s.startswith("INSERT INTO runs") for s in statements)
    assert any(s.startswith("UPDATE runs SET state") for s in statements)
    assert any(s.startswith("INSERT INTO audit") for s in statements)
    assert {thread for thread, _ in seen} == {"sysmenu-db_0"}


async def test_a_valid_key_cache_answers_without_the_database(env: Env) -> None:
    await env.client.get("/api/version", headers=env.auth())  # the cache is loaded
    with statements_by_thread(env.store) as seen:
        for path in ("/api/version", "/api/system/commands", "/api/status"):
            assert (await env.client.get(path, headers=env.auth())).status_code == 200
    assert seen == []


async def test_a_key_revoked_by_another_connection_is_seen_at_once(env: Env) -> None:
    assert (await env.client.get("/api/version", headers=env.auth())).status_code == 200
    other = Store(env.tmp / "sysmenu.db")
    other.accounts.revoke_key(env.admin_key[:8])
    other.close()
    assert (await env.client.get("/api/version", headers=env.auth())).status_code == 403


@asynccontextmanager
async def locked(tmp_path: Path, busy_timeout: float) -> AsyncIterator[tuple[Env, sqlite3.Connection]]:
    """The app on a store with `busy_timeout`, and a second connection that holds the
    write lock (another process's long transaction) until the test rolls it back."""
    store = Store(tmp_path / "sysmenu.db", busy_timeout=busy_timeout)
    store.accounts.add_user("admin", ["admins"])
    admin_key = store.accounts.create_key("admin")
    app = create_app(with_test_host(parse(CONFIG, "test.yaml")), store)
    holder = sqlite3.connect(tmp_path / "sysmenu.db", isolation_level=None)
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://example.com") as client:
                holder.execute("BEGIN IMMEDIATE")
                holder.execute("INSERT INTO audit(ts, event) VALUES (0, 'lock')")
                yield Env(client, store, admin_key, "unused", tmp_path, app), holder
                if holder.in_transaction:
                    holder.execute("ROLLBACK")
    finally:
        holder.close()
        store.close()


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 10 s")


async def test_a_locked_database_delays_only_what_needs_it(tmp_path: Path) -> None:
    async with locked(tmp_path, busy_timeout=30) as (env, holder):
        with statements_by_thread(env.store) as seen:
            execute = asyncio.create_task(
                env.client.post("/api/system/commands/custom/hello", headers=env.auth())
            )
            await until(lambda: ("sysmenu-db_0", "BEGIN IMMEDIATE") in seen)  # waiting for the lock
            for path in ("/api/version", "/api/system/commands", "/api/status"):
                assert (await env.client.get(path, headers=env.auth())).status_code == 200
            assert not execute.done()
            holder.execute("ROLLBACK")
            assert (await execute).status_code == 204


async def test_a_database_locked_too_long_is_503_for_that_request(tmp_path: Path) -> None:
    async with locked(tmp_path, busy_timeout=0.05) as (env, holder):
        r = await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
        assert r.status_code == 503
        assert "database" in r.json()["error"]
        assert (await env.client.get("/api/runs", headers=env.auth())).status_code == 200  # reads pass
        holder.execute("ROLLBACK")
        r = await env.client.post("/api/system/commands/custom/hello", headers=env.auth())
        assert r.status_code == 204  # the lock gone, the same request works


async def test_database_run_returns_results_and_raises_errors(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    assert await db.run(lambda: threading.current_thread().name) == "sysmenu-db_0"
    with pytest.raises(sqlite3.OperationalError):
        await db.run(db.conn.execute, "SELECT * FROM no_such_table")
    db.close()
