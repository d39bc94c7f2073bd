"""The app factory: routes, middleware stack, exception handlers, lifespan.

Only this module assembles; nothing in the package imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route

from . import handover
from .api import SystemApi
from .appkeys_api import AppKeysApi
from .audit_api import AuditApi
from .config import Config
from .database import Database
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
from .state import State
from .store import Store
from .web import WebUi

log = logging.getLogger("sysmenu")


async def _watch_database(db: Database, interval: float = 2.0) -> None:
    """Notice (and log) a database file deleted, replaced or writable again, even when
    nothing is written meanwhile."""
    while True:
        await asyncio.sleep(interval)
        await db.run(db.check_file)


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
    # The limiters' state goes beside the database (the data dir in force, whoever made the store).
    data_dir = None if state.store.db.path == ":memory:" else Path(state.store.db.path).parent

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.monitor.start()
        if data_dir is not None:
            handover.restore(data_dir, state.limiters())
        try:
            interrupted = await state.runner.recover()
        except sqlite3.Error as exc:
            log.error("cannot mark the runs of an earlier server interrupted: %s", exc)
            interrupted = []
        if interrupted:
            log.warning("runs left by an earlier server marked interrupted: %s", interrupted)
        try:
            await state.store.db.run(appkeys.keys.resume)
        except sqlite3.Error as exc:
            log.error("cannot resume the pending key requests: %s", exc)
        accounts = state.store.accounts
        with contextlib.suppress(sqlite3.Error):  # else the first request with a key loads them
            await state.store.db.run(accounts.load_keys)
        database = asyncio.create_task(_watch_database(state.store.db))
        watcher = None
        interval = config.sysmenu.reload_interval
        if interval > 0 and os.path.isfile(config.source):
            watcher = asyncio.create_task(ConfigWatcher(state, config.source, interval).watch())
        pruner = asyncio.create_task(
            prune_forever(
                state.store.db.path, lambda: (state.config.sysmenu.keep_runs, state.config.sysmenu.keep_audit)
            )
        )
        if mqtt is not None:
            mqtt.start()
        try:
            yield
        finally:
            pruner.cancel()
            database.cancel()
            if watcher is not None:
                watcher.cancel()
            await state.runner.close()
            state.monitor.stop()
            if data_dir is not None:
                handover.save(data_dir, state.limiters())
            if mqtt is not None:  # after the runs: their ends are published, then "offline"
                await mqtt.stop()

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
