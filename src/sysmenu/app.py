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

from starlette.applications import Starlette
from starlette.routing import Route

from .api import SystemApi
from .appkeys_api import AppKeysApi
from .config import Config
from .formkey import FormKey
from .middleware import FastCommandList, RequestGuard
from .octoprint_compat import OctoPrintCompat
from .reload import ConfigWatcher
from .responses import EXCEPTION_HANDLERS
from .runs_api import RunsApi
from .state import State
from .store import Store
from .web import WebUi

log = logging.getLogger("sysmenu")


def create_app(config: Config, store: Store | None = None) -> Starlette:
    """Build the ASGI app for `config` (and `store`, else the one in its data dir)."""
    state = State(config, store)
    system = SystemApi(state)
    runs = RunsApi(state)
    web = WebUi(state)
    appkeys = AppKeysApi(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
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
        watcher = None
        interval = config.sysmenu.reload_interval
        if interval > 0 and os.path.isfile(config.source):
            watcher = asyncio.create_task(ConfigWatcher(state, config.source, interval).watch())
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            await state.runner.close()

    routes = [
        Route("/api/version", system.version, methods=["GET"]),
        Route("/api/server", system.server, methods=["GET"]),
        Route("/api/system", system.execute_legacy, methods=["POST"]),
        Route("/api/system/commands", system.list_all, methods=["GET"]),
        Route("/api/system/commands/{source}", system.list_source, methods=["GET"]),
        Route("/api/system/commands/{source}/{action}", system.execute, methods=["POST"]),
        *runs.routes(),
        *web.routes(),
        *OctoPrintCompat(state).routes(),
        *appkeys.routes(),
    ]
    app = Starlette(routes=routes, exception_handlers=dict(EXCEPTION_HANDLERS), lifespan=lifespan)
    app.router.redirect_slashes = False
    app.state.sysmenu = state
    app.add_middleware(FormKey)  # inside the guard: the body it reads is size-limited
    app.add_middleware(RequestGuard, proxies=lambda: state.proxies)
    app.add_middleware(FastCommandList, state=state)  # outermost: before any other layer
    return app
