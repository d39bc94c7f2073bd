"""``GET /api/health``: ok, or 503 naming each failing check."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from sysmenu.health import MAX_LAG, LoopMonitor, probe_store
from sysmenu.reload import ConfigWatcher
from tests.conftest import Env

pytestmark = pytest.mark.anyio


async def test_healthy_server_says_ok_without_a_key(env: Env) -> None:
    r = await env.client.get("/api/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["cache-control"] == "no-store"
    assert (await env.client.head("/api/health")).status_code == 200  # uptime checkers send HEAD too


async def test_store_that_cannot_take_a_write_fails_the_check(env: Env) -> None:
    assert env.app is not None
    env.app.state.health.lock_timeout = 0.05  # production waits 1 s for the lock
    other = sqlite3.connect(env.store.db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the check's timeout
    try:
        r = await env.client.get("/api/health")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "fail"
    assert set(body["checks"]) == {"store"}
    assert "cannot take a write" in body["checks"]["store"]
    assert body["error"] == "Unhealthy: store"
    assert (await env.client.get("/api/health")).status_code == 200  # and well again once released


def test_probe_names_a_missing_database(tmp_path: Path) -> None:
    assert probe_store(str(tmp_path / "none.db")) == "the database file cannot be written"
    assert probe_store(str(tmp_path / "missing-dir" / "x.db")) is not None


async def test_rejected_config_change_fails_the_config_check(env: Env, tmp_path: Path) -> None:
    assert env.app is not None
    state = env.app.state.sysmenu
    path = tmp_path / "config.yaml"
    path.write_text("system:\n  actions: []\n")
    watcher = ConfigWatcher(state, str(path), 1.0)
    path.write_text("sysmenu:\n  port: nope\n")
    assert await watcher.check()
    r = await env.client.get("/api/health")
    assert r.status_code == 503
    assert set(r.json()["checks"]) == {"config"}
    path.write_text("system:\n  actions: []\nsysmenu:\n  allowed_hosts: [example.com]\n")
    assert await watcher.check()
    assert (await env.client.get("/api/health")).status_code == 200


class CountingMonitor(LoopMonitor):
    """The monitor, counting its ticks: how a test waits for the next one (production
    keeps no such counter)."""

    ticks = 0

    def _tick(self) -> None:
        self.ticks += 1
        super()._tick()


async def next_tick(monitor: CountingMonitor) -> None:
    ticks = monitor.ticks
    while monitor.ticks == ticks:
        await asyncio.sleep(0)


async def test_blocked_event_loop_fails_the_loop_check(env: Env) -> None:
    assert env.app is not None
    state = env.app.state
    state.sysmenu.monitor.stop()  # the app's monitor, replaced by one at a test pace (production: 0.5 s, 1 s)
    monitor = state.sysmenu.monitor = state.health.monitor = CountingMonitor(interval=0.01, max_lag=0.1)
    monitor.start()
    time.sleep(monitor.max_lag + monitor.interval + 0.05)  # blocks the loop the app runs on (this test's)
    await next_tick(monitor)  # the monitor's timer, overdue, runs and sees the lag
    # No tick on time may clear it before the request is answered (on a loaded machine
    # the request takes longer than the 0.01 s interval): the monitor keeps the lag it saw.
    monitor.stop()
    r = await env.client.get("/api/health")
    assert r.status_code == 503
    assert set(r.json()["checks"]) == {"loop"}
    assert "late (limit 0.1 s)" in r.json()["checks"]["loop"]


async def test_loop_monitor_measures_lateness() -> None:
    assert LoopMonitor().max_lag == MAX_LAG == 1.0
    monitor = CountingMonitor(interval=0.01, max_lag=0.25)  # room for a loaded machine's late ticks
    monitor.start()
    try:
        await next_tick(monitor)
        assert monitor.lag < 0.2 and monitor.healthy()
        # The next timer is due `interval` after the tick just seen: blocking the loop
        # `max_lag + interval` (and a hair, for the clock's rounding) makes it that late.
        time.sleep(monitor.max_lag + monitor.interval + 0.01)
        await next_tick(monitor)
        assert monitor.lag >= monitor.max_lag
        assert not monitor.healthy()
        await next_tick(monitor)
        assert monitor.healthy()
    finally:
        monitor.stop()
