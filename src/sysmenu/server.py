"""Serving the app with uvicorn: one worker, guarded connections, runs stopped first.

uvicorn's httptools protocol puts no bound on how long a client may take to
send its headers, nor on their size: a slow client (slowloris) holds a
connection forever and a 1 MB header is read whole. `_GuardedHttpTools`
adds both bounds. Nor is there a bound on writing: a client that sends requests
and never reads the answers held its connection for ever, with pipelined requests
queueing without end. A connection whose answers stay unsent for `write_timeout`
seconds is cut off, and one with more than `MAX_PIPELINED` requests waiting
behind the current one as well. `connections.ConnectionCaps` decides which
connections are served at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import ClassVar

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .connections import ConnectionCaps
from .errors import error_body
from .lifecycle import ManagedServer
from .responses import API_HEADERS
from .settings import Settings
from .systemd import Notifier, describe

GRACEFUL_SHUTDOWN = 3  # seconds open connections get once the runs are stopped
MAX_PIPELINED = 16  # requests a client may queue behind the one being answered


_API_HEAD = "".join(f"{name.lower()}: {value}\r\n" for name, value in API_HEADERS.items())


def _refusal(status: str, message: str, retry: bool = False) -> bytes:
    """A whole answer refusing a connection's request before the app sees it, with the
    headers every API answer carries."""
    body = json.dumps(error_body(message)).encode()
    retry_after = "retry-after: 1\r\n" if retry else ""
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{_API_HEAD}{retry_after}connection: close\r\n\r\n"
    )
    return head.encode() + body


class _GuardedHttpTools(HttpToolsProtocol):
    """Deadline for a request's headers and body, and a bound on the headers' size.

    The deadline is a timestamp checked by one sweep for all connections a few
    times per timeout, not a timer armed and cancelled per request: that cost a
    quarter of the throughput of a small endpoint.
    """

    header_timeout: float = 10.0
    write_timeout: float = 30.0
    max_header_bytes: int = 32 * 1024
    # Set per server by run_server: the open connections, the pending sweep, the caps.
    _connections: ClassVar[set[_GuardedHttpTools]] = set()
    _sweep: ClassVar[list[asyncio.TimerHandle]] = []
    _caps: ClassVar[ConnectionCaps]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._deadline: float | None = self.loop.time() + self.header_timeout
        self._write_deadline: float | None = None
        self._peer = self.client[0] if self.client else None
        self._refused = self._caps.admit(self._peer)
        self._connections.add(self)
        if not self._sweep:
            self._schedule_sweep(self.loop)

    @classmethod
    def _schedule_sweep(cls, loop: asyncio.AbstractEventLoop) -> None:
        interval = min(1.0, cls.header_timeout / 4)
        cls._sweep.append(loop.call_later(interval, cls._sweep_slow, loop))

    @classmethod
    def _sweep_slow(cls, loop: asyncio.AbstractEventLoop) -> None:
        cls._sweep.clear()
        now = loop.time()
        for connection in list(cls._connections):
            if connection._deadline is not None and now >= connection._deadline:
                connection._too_slow()
            elif connection._write_deadline is not None and now >= connection._write_deadline:
                connection._not_reading()
        if cls._connections:
            cls._schedule_sweep(loop)

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = getattr(self, "cycle", None)
        if cycle is None or not cycle.response_started:
            self.transport.write(_refusal("408 Request Timeout", "Request took too long to send"))
        self.transport.close()

    def _not_reading(self) -> None:
        # The client does not take its answers: nothing more can reach it, and a
        # graceful close would wait for the unsent bytes for ever.
        self._write_deadline = None
        self._caps.refusals.refused("client not reading its answers (write_timeout)", self._peer)
        self.transport.abort()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._write_deadline = self.loop.time() + self.write_timeout

    def resume_writing(self) -> None:
        super().resume_writing()
        self._write_deadline = None

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
        self._deadline = self.loop.time() + self.header_timeout

    def on_url(self, url: bytes) -> None:
        if self._count(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count(len(name) + len(value)):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # The deadline stands until the body is in too (on_message_complete):
        # a body trickled in a byte at a time must not hold the connection either.
        if self.transport.is_closing():
            return
        if self._refused is not None:
            self._deadline = None
            self.transport.write(
                _refusal("503 Service Unavailable", f"Too many connections: {self._refused}", retry=True)
            )
            self.transport.close()
            return
        super().on_headers_complete()
        if len(self.pipeline) > MAX_PIPELINED:  # a client queueing this much is not reading
            self._caps.refusals.refused("client not reading its answers (pipelined requests)", self._peer)
            self.transport.abort()

    def on_message_complete(self) -> None:
        self._deadline = None
        if self.cycle is None or self.transport.is_closing():
            return
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle keep-alive connections are closed by uvicorn's keep-alive timeout; a
        # body still arriving after the answer (the app did not read it) stays timed.
        if not self.cycle.more_body:
            self._deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline = self._write_deadline = None
        if self._refused is None:
            self._caps.release(self._peer)
            self._refused = "closed"
        self._connections.discard(self)
        super().connection_lost(exc)


class _Server(ManagedServer):
    """uvicorn's server, stopping the runs first on shutdown.

    uvicorn drains open connections before the app's lifespan shutdown; a live
    event stream would hold it until the timeout. Killing the runs first ends
    their streams with a proper ``end`` event, and sync requests get their answer.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.before_shutdown()
        await self.runner.close()
        await super().shutdown(sockets)

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn raises a caught SIGINT again once it has stopped cleanly; Ctrl-C is a
        # clean stop, not an abort: exit 0 instead of click's "Aborted!" and status 1.
        with contextlib.suppress(KeyboardInterrupt):
            super().run(sockets)


def run_server(
    app: Starlette,
    host: str,
    port: int,
    settings: Settings,
    sockets: list[socket.socket] | None = None,
    idle_exit: float = 0.0,
    notifier: Notifier | None = None,
) -> None:
    """Serve `app` on `host`:`port`, or on `sockets` passed by systemd (then with
    `idle_exit`, if set)."""
    protocol = type(
        "GuardedHttpTools",
        (_GuardedHttpTools,),
        {
            "header_timeout": settings.header_timeout,
            "write_timeout": settings.write_timeout,
            "max_header_bytes": settings.max_header_bytes,
            "_connections": set(),
            "_sweep": [],
            "_caps": app.state.sysmenu.connection_caps,
        },
    )
    # The server adopts what its runs leave behind (and reaps only those: children it starts
    # itself stay in its own process group).
    app.state.sysmenu.runner.adopt_orphans()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        ws="none",  # no WebSocket endpoints: do not load a WebSocket library either
        log_config=None,  # sysmenu.logs formats every line, uvicorn's too
        log_level=None,
        access_log=settings.access_log,
        proxy_headers=False,  # X-Forwarded-* are read by sysmenu, from trusted proxies only
        server_header=False,
        limit_concurrency=None,  # connections.ConnectionCaps, which refuses only the excess
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        lifespan="on",
    )
    state = app.state.sysmenu
    where = ", ".join(describe(s) for s in sockets) if sockets else f"{host}:{port}"
    server = _Server(
        config,
        state.runner,
        state.monitor,
        notifier or Notifier(),
        where,
        idle_exit if sockets else 0.0,
    )
    server.run(sockets=sockets or None)
