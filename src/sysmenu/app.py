"""The app factory: routes, error mapping, lifespan. No module-level state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from typing import ClassVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import auth
from .api import SystemApi, json_response
from .appkeys_api import AppKeysApi
from .catalogue import SOURCES, Catalogue
from .config import Config, replace
from .errors import Forbidden, PayloadTooLarge, SysmenuError, error_body
from .formkey import FormKey
from .octoprint_compat import OctoPrintCompat
from .ratelimit import FailureLimiter
from .reload import ConfigState, ConfigWatcher
from .runner import Runner
from .runs_api import RunsApi
from .store import Store
from .web import WebUi

log = logging.getLogger("sysmenu")

MAX_BODY = 100 * 1024  # OctoPrint's server.maxSize: no endpoint here takes more than a small object


class Sysmenu:
    """Everything one running server holds: config, catalogue, store, runner."""

    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.store = store or Store(config.data_dir() / "sysmenu.db")
        settings = config.sysmenu
        self.runner = Runner(
            self.store,
            default_timeout=settings.default_timeout,
            kill_grace=settings.kill_grace,
            output_limit=settings.output_limit,
        )
        self.config_state = ConfigState(config.source, time.time())
        self.fast_answers = 0  # list requests answered by _FastList (for tests and profiling)
        self.config = config
        self.apply(config)

    def apply(self, config: Config) -> None:
        """Put `config` in force. Address, port and data dir keep their start-up values
        (they need a restart); runs in progress keep the spec they started with."""
        fixed = {k: getattr(self.config.sysmenu, k) for k in ("host", "port", "data_dir")}
        changed = [k for k, v in fixed.items() if getattr(config.sysmenu, k) != v]
        if changed:
            log.warning("%s changed in the config: takes effect at the next start", ", ".join(changed))
        for warning in config.warnings:
            log.warning("config: %s", warning)
        settings = replace(config.sysmenu, **fixed)
        self.config = replace(config, sysmenu=settings)
        self.catalogue = Catalogue(self.config)
        self.runner.default_timeout = settings.default_timeout
        self.runner.kill_grace = settings.kill_grace
        self.runner.output_limit = settings.output_limit
        self.proxies = auth.Proxies(settings.trusted_proxies)
        self.key_failures = FailureLimiter(settings.key_failure_limit, settings.key_failure_window)
        self.login_failures = FailureLimiter(settings.key_failure_limit, settings.key_failure_window)

    def identify_any(self, request: Request) -> auth.Identity:
        """Any valid identity, whatever its permissions; else 403 (never 401: clients
        such as pyoctoprintapi re-authenticate on 403 only)."""
        identity = auth.identify(
            request,
            self.store,
            self.key_failures,
            self.proxies.client(request),
            lambda: self.session_cookie(request),  # only worked out when no key is given
        )
        if identity is None:
            raise Forbidden(auth.FORBIDDEN)
        if not auth.check_csrf(request, identity):
            raise Forbidden(auth.CSRF_FAILED)
        return identity

    def session_cookie(self, request: Request) -> str:
        return auth.SESSION_COOKIE + auth.cookie_suffix(self.proxies.base_url(request))

    def require(self, request: Request, permission: str) -> auth.Identity:
        """The caller's identity if it holds `permission`; else 403."""
        identity = self.identify_any(request)
        if not identity.user.can(permission):
            raise Forbidden(auth.FORBIDDEN)
        return identity


class _Guard:
    """Request hygiene before routing, answering in the API's error shape.

    - ``//api/x`` is ``/api/x`` (pyoctoprintapi sends such paths; OctoPrint accepts them);
    - ``/octo/api/x`` is ``/api/x`` when a trusted proxy announces the prefix ``/octo`` in
      ``X-Script-Name`` (or ``X-Forwarded-Prefix``) and did not strip it, as in OctoPrint;
    - dot segments and encoded slashes name nothing here: 404, never a route's match;
    - bodies larger than `max_body` get 413 (no endpoint takes more than a small object).
    """

    _SLASHES = re.compile(r"/{2,}")

    def __init__(
        self,
        app: ASGIApp,
        max_body: int = MAX_BODY,
        proxies: Callable[[], auth.Proxies] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if "//" in path:
            path = self._SLASHES.sub("/", path)
            scope = dict(scope, path=path)
        if self.proxies is not None:
            prefix = self.proxies().prefix(Request(scope))
            if prefix and (path == prefix or path.startswith(prefix + "/")):
                path = path[len(prefix) :] or "/"
                scope = dict(scope, path=path)
        raw = scope.get("raw_path") or b""
        if b"%2f" in raw.lower() or b"%5c" in raw.lower() or any(s in (".", "..") for s in path.split("/")):
            await json_response(error_body("Not Found"), 404)(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await json_response(error_body("Invalid Content-Length"), 400)(scope, receive, send)
                    return
                if int(value) > self.max_body:
                    await json_response(error_body("Request body too large"), 413)(scope, receive, send)
                    return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise PayloadTooLarge("Request body too large")
            return message

        return limited


class _FastList:
    """``GET /api/system/commands[/{source}]`` with a valid API key, answered without the
    framework: it is what dashboards poll, and Starlette's layers cost twice what the
    rest of the request does.

    Only the plain success case is answered here, and with the bytes the full route
    would send; anything else (no key, a wrong one, a limited address, proxy headers,
    a query string, a body, an odd path) goes on to the full app, which answers it as
    it always has.
    """

    PATHS: ClassVar[dict[str, str | None]] = {
        "/api/system/commands": None,
        **{f"/api/system/commands/{s}": s for s in SOURCES},
    }
    # Headers that change the answer or need the full app's checks.
    _DEFER = frozenset(
        {
            b"authorization",
            b"content-length",
            b"transfer-encoding",
            b"x-forwarded-for",
            b"x-forwarded-host",
            b"x-forwarded-proto",
            b"x-forwarded-prefix",
            b"x-script-name",
            b"x-scheme",
            b"cookie",
        }
    )

    def __init__(self, app: ASGIApp, state: Sysmenu) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope.get("query_string")
            and scope["path"] in self.PATHS
            and scope.get("raw_path", scope["path"].encode()) == scope["path"].encode()
        ):
            body = self._answer(scope)
            if body is not None:
                self.state.fast_answers += 1
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(self, scope: Scope) -> bytes | None:
        key = host = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                if key is not None and value != key:
                    return None  # disagreeing copies: the full app refuses them
                key = value
            elif name == b"host":
                host = host or value
            elif name in self._DEFER:
                return None
        if not key or not host or len(key) > auth.MAX_KEY_LENGTH:
            return None
        state = self.state
        client = scope.get("client")
        if state.key_failures.retry_after(client[0] if client else None):
            return None
        try:
            user = state.store.user_for_key(key.decode("latin-1"))
        except sqlite3.Error:
            return None
        if user is None or not user.can("SYSTEM"):
            return None
        base_url = f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}/"
        return state.catalogue.rendered(base_url, self.PATHS[scope["path"]])


async def _sysmenu_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SysmenuError)
    return json_response(error_body(exc.message), exc.status_code, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return json_response(error_body(str(exc.detail)), exc.status_code, exc.headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client went away mid-body (or was cut off as too slow): nobody reads this.
    log.debug("client left during %s %s", request.method, request.url.path)
    return json_response(error_body("Client disconnected"), 400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response(error_body("Internal server error"), 500)


def create_app(config: Config, store: Store | None = None) -> Starlette:
    """Build the ASGI app for `config` (and `store`, else the one in its data dir)."""
    state = Sysmenu(config, store)
    system = SystemApi(state)
    runs = RunsApi(state)
    web = WebUi(state)
    appkeys = AppKeysApi(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            interrupted = state.runner.recover()
        except sqlite3.Error as exc:
            log.error("cannot mark the runs of an earlier server interrupted: %s", exc)
            interrupted = []
        if interrupted:
            log.warning("runs left by an earlier server marked interrupted: %s", interrupted)
        try:
            appkeys.keys.resume()
        except sqlite3.Error as exc:
            log.error("cannot resume the pending key requests: %s", exc)
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
    app = Starlette(
        routes=routes,
        exception_handlers={
            SysmenuError: _sysmenu_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.sysmenu = state
    app.add_middleware(FormKey)  # inside the guard: the body it reads is size-limited
    app.add_middleware(_Guard, proxies=lambda: state.proxies)
    app.add_middleware(_FastList, state=state)  # outermost: before any other layer
    return app
