"""The app factory: routes, middleware stack, exception handlers, lifespan.

Only this module assembles; nothing in the package imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Route

from . import handover
from .api import SystemApi
from .appkeys_api import AppKeysApi
from .audit_api import AuditApi
from .config import Config
from .database import IN_MEMORY, Database
from .formkey import FormKey
from .health import Health
from .hosts import HostGuard
from .metrics import HttpMetrics, MetricsView, RouteProbe
from .middleware import FastCommandList, RequestGuard
from .octoprint_compat import OctoPrintCompat
from .reload import ConfigWatcher
from .responses import EXCEPTION_HANDLERS
from .retention import prune_forever
from .runs_api import RunsApi
from .settings import Retention
from .state import State
from .store import Store
from .web import WebUi

if TYPE_CHECKING:
    from .appkeys import AppKeys
    from .mqtt import MqttLink

log = logging.getLogger("sysmenu")


async def _watch_database(db: Database, interval: float = 2.0) -> None:
    """Notice (and log) a database file deleted, replaced or writable again, even when
    nothing is written meanwhile."""
    while True:
        await asyncio.sleep(interval)
        await db.run(db.check_file)


def _data_dir(state: State) -> Path | None:
    """Where the limiters' state goes: beside the database (the data dir in force,
    whoever made the store); None for a database in memory."""
    return None if state.store.db.path == IN_MEMORY else Path(state.store.db.path).parent


async def _recover(state: State, keys: AppKeys) -> None:
    """Before the first request: what an earlier server left (limiters, runs it did not
    end, pending key requests) and the API keys."""
    data_dir = _data_dir(state)
    if data_dir is not None:
        handover.restore(data_dir, state.limiters())
    try:
        interrupted = await state.runner.recover()
    except sqlite3.Error as exc:
        log.error("cannot mark the runs of an earlier server interrupted: %s", exc)
        interrupted = []
    if interrupted:
        log.warning("runs left by an earlier server marked interrupted: %s", interrupted)
    await state.store.db.run(_keys_at_start, state, keys)  # one trip to the database thread


def _keys_at_start(state: State, keys: AppKeys) -> None:
    """(On the database thread.) Pending key requests get a fresh poll window; the API
    keys are read into the cache."""
    try:
        keys.resume()
    except sqlite3.Error as exc:
        log.error("cannot resume the pending key requests: %s", exc)
    with contextlib.suppress(sqlite3.Error):  # else the first request with a key loads them
        state.store.accounts.load_keys()


def _background(state: State, config: Config) -> list[asyncio.Task[None]]:
    """The tasks that run beside the requests: the database file's watch, the config's
    (when it is a file and reloading is on) and the pruning of old runs and audit rows."""
    tasks = [asyncio.create_task(_watch_database(state.store.db))]
    interval = config.sysmenu.reload_interval
    if interval > 0 and os.path.isfile(config.source):
        tasks.append(asyncio.create_task(ConfigWatcher(state, config.source, interval).watch()))

    def keep() -> tuple[Retention, Retention]:  # the settings in force (a reload changes them)
        return state.config.sysmenu.keep_runs, state.config.sysmenu.keep_audit

    tasks.append(asyncio.create_task(prune_forever(state.store.db.path, keep)))
    return tasks


def _lifespan(
    state: State, config: Config, keys: AppKeys, mqtt: MqttLink | None
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.monitor.start()
        await _recover(state, keys)
        tasks = _background(state, config)
        if mqtt is not None:
            mqtt.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await state.runner.close()
            state.monitor.stop()
            data_dir = _data_dir(state)
            if data_dir is not None:
                handover.save(data_dir, state.limiters())
            if mqtt is not None:  # after the runs: their ends are published, then "offline"
                await mqtt.stop()

    return lifespan


def create_app(config: Config, store: Store | None = None) -> Starlette:
    """Build the ASGI app for `config` (and `store`, else the one in its data dir)."""
    state = State(config, store)
    mqtt = None
    if config.sysmenu.mqtt is not None:  # aiomqtt is imported only then (memory)
        from .mqtt import MqttLink

        mqtt = MqttLink(state, config.sysmenu.mqtt)
    system = SystemApi(state)
    runs = RunsApi(state)
    audit = AuditApi(state)
    web = WebUi(state)
    appkeys = AppKeysApi(state)
    health = Health(state.store.db.path, lambda: state.config_state.error, state.monitor)
    metrics = MetricsView(state.metrics, state.runner, health, state.authorize_metrics)

    lifespan = _lifespan(state, config, appkeys.keys, mqtt)
    routes = [
        Route("/api/version", system.version, methods=["GET"]),
        Route("/api/server", system.server, methods=["GET"]),
        Route("/api/system", system.execute_legacy, methods=["POST"]),
        Route("/api/system/commands", system.list_all, methods=["GET"]),
        Route("/api/system/commands/{source}", system.list_source, methods=["GET"]),
        Route("/api/system/commands/{source}/{action}", system.execute, methods=["POST"]),
        *runs.routes(),
        *audit.routes(),
        *web.routes(),
        *OctoPrintCompat(state).routes(),
        *appkeys.routes(),
        Route("/api/health", health.view, methods=["GET"]),
        Route("/metrics", metrics.view, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers=dict(EXCEPTION_HANDLERS), lifespan=lifespan)
    app.router.redirect_slashes = False
    app.state.sysmenu = state
    app.add_middleware(RouteProbe)  # innermost: tells HttpMetrics the route
    app.add_middleware(FormKey)  # inside the guard: the body it reads is size-limited
    app.state.mqtt = mqtt
    app.state.health = health
    app.add_middleware(RequestGuard, proxies=lambda: state.proxies)
    app.add_middleware(HostGuard, check=lambda: state.hosts)
    app.add_middleware(HttpMetrics, metrics=state.metrics)
    fast_routes = {
        path: "/api/system/commands" + ("/{source}" if source else "")
        for path, source in FastCommandList.PATHS.items()
    }
    # Outermost: before any other layer; it counts its own answers (a counting layer
    # around it would cost the fast path a tenth of its speed).
    app.add_middleware(
        FastCommandList, state=state, answered=lambda path: state.metrics.count(fast_routes[path], 200)
    )
    return app
