"""Serving the app with uvicorn: one worker, guarded connections, runs stopped first.

uvicorn's httptools protocol puts no bound on how long a client may take to
send a request (its headers, then its body), nor on the headers' size: a slow
client (slowloris, or a slow body: "R.U.D.Y.") holds a connection forever and
a 1 MB header is read whole. `_GuardedHttpTools` adds both bounds;
`max_connections` caps open connections.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import Settings
from .errors import error_body

GRACEFUL_SHUTDOWN = 3  # seconds open connections get once the runs are stopped


def _refusal(status: str, message: str) -> bytes:
    body = json.dumps(error_body(message)).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class _GuardedHttpTools(HttpToolsProtocol):
    header_timeout: float = 10.0
    max_header_bytes: int = 32 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        cycle = getattr(self, "cycle", None)
        if cycle is None or not cycle.response_started:
            self.transport.write(_refusal("408 Request Timeout", "Request took too long to send"))
        self.transport.close()

    def _count(self, size: int) -> bool:
        self._header_bytes += size
        if self._header_bytes <= self.max_header_bytes:
            return True
        if not self.transport.is_closing():
            self.transport.write(
                _refusal("431 Request Header Fields Too Large", "Request headers are too large")
            )
            self.transport.close()
        return False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        if self._count(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count(len(name) + len(value)):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # The timer keeps running until the body is in too (on_message_complete):
        # a body trickled in a byte at a time must not hold the connection either.
        if self.transport.is_closing():
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle keep-alive connections are closed by uvicorn's keep-alive timeout; a
        # body still arriving after the answer (the app did not read it) stays timed.
        if not self.cycle.more_body:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


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


def run_server(app: Starlette, host: str, port: int, settings: Settings) -> None:
    protocol = type(
        "GuardedHttpTools",
        (_GuardedHttpTools,),
        {"header_timeout": settings.header_timeout, "max_header_bytes": settings.max_header_bytes},
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=False,  # X-Forwarded-* are read by sysmenu, from trusted proxies only
        server_header=False,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        lifespan="on",
    )
    _Server(config, app).run()
