"""Serving the app with uvicorn: one worker, runs stopped before connections are drained."""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.applications import Starlette

GRACEFUL_SHUTDOWN = 3  # seconds open connections get once the runs are stopped


class _Server(uvicorn.Server):
    """uvicorn's server, stopping the runs first on shutdown.

    uvicorn drains open connections before the app's lifespan shutdown; a live
    event stream would hold it until the timeout. Killing the runs first ends
    their streams with a proper ``end`` event, and sync requests get their answer.
    """

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.runner = app.state.sysmenu.runner

    async def shutdown(self, sockets: Any = None) -> None:
        await self.runner.close()
        await super().shutdown(sockets)


def run_server(app: Starlette, host: str, port: int, log_level: str) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,  # X-Forwarded-* are read by sysmenu, from trusted proxies only
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        lifespan="on",
    )
    _Server(config, app).run()
