"""The ASGI middlewares in front of the routes: request hygiene (`RequestGuard`)
and the command lists' fast path (`FastCommandList`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import auth
from .access import SOURCES
from .errors import BadRequest, NotFound, PayloadTooLarge, SysmenuError
from .responses import API_HEADER_BYTES, error_response
from .state import State

MAX_BODY = 100 * 1024  # OctoPrint's server.maxSize: no endpoint here takes more than a small object


class RequestGuard:
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
        refusal = self._refusal(scope, path)
        if refusal is not None:
            await error_response(refusal)(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _refusal(self, scope: Scope, path: str) -> SysmenuError | None:
        raw = scope.get("raw_path") or b""
        if b"%2f" in raw.lower() or b"%5c" in raw.lower() or any(s in (".", "..") for s in path.split("/")):
            return NotFound("Not Found")
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return BadRequest("Invalid Content-Length")
                if int(value) > self.max_body:
                    return PayloadTooLarge("Request body too large")
        return None

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


class FastCommandList:
    """``GET /api/system/commands[/{source}]`` with a valid API key, answered without the
    framework: it is what dashboards poll, and Starlette's layers cost twice what the
    rest of the request does.

    Only the plain success case is answered here, and with the bytes the full route
    would send; anything else (no key, a wrong one, a refused Host, proxy headers,
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

    def __init__(self, app: ASGIApp, state: State, answered: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.state = state
        self.answered = answered  # told the path of each request answered here (metrics)

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
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            *API_HEADER_BYTES,  # in the order the full app's Response puts them
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                if self.answered is not None:
                    self.answered(scope["path"])
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
        if not state.hosts.allows(host.decode("latin-1")):
            return None
        accounts = state.store.accounts
        if not accounts.keys_current():
            return None  # the full app loads the keys on the database thread
        owner = accounts.cached_key_owner(key.decode("latin-1"))
        # only OctoPrint's plain SYSTEM (no scope, no deny naming the caller) sees the whole list
        if (
            owner is None
            or not state.grant(auth.Identity(owner[0], "apikey", scope=owner[1])).runs_everything
        ):
            return None
        base_url = f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}/"
        return state.catalogue.rendered(base_url, self.PATHS[scope["path"]])
