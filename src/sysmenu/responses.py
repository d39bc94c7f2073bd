"""Response helpers shared by every view and middleware, and the one place where
exceptions become responses."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .errors import SysmenuError, error_body

log = logging.getLogger("sysmenu")

JSON = "application/json"
NO_CONTENT = Response(status_code=204)


# On every JSON answer of the API: answers hold CSRF tokens and command output, which
# no cache may keep, and none may be read as anything but JSON.
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
API_HEADER_BYTES = tuple((k.lower().encode(), v.encode()) for k, v in API_HEADERS.items())


def json_response(data: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    headers = API_HEADERS | dict(headers) if headers else API_HEADERS
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


async def sysmenu_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SysmenuError)
    return json_response(error_body(exc.message) | (exc.details or {}), exc.status_code, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return json_response(error_body(str(exc.detail)), exc.status_code, exc.headers)


async def client_gone(request: Request, exc: Exception) -> Response:
    # The client went away mid-body (or was cut off as too slow): nobody reads this.
    log.debug("client left during %s %s", request.method, request.url.path)
    return json_response(error_body("Client disconnected"), 400)


async def storage_error(request: Request, exc: Exception) -> Response:
    # A locked (past the busy timeout), read-only or full database: only this request fails.
    log.error("database error on %s %s: %s", request.method, request.url.path, exc)
    return json_response(error_body(f"The database cannot be used right now: {exc}"), 503)


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response(error_body("Internal server error"), 500)


EXCEPTION_HANDLERS = {
    SysmenuError: sysmenu_error,
    HTTPException: http_error,
    ClientDisconnect: client_gone,
    sqlite3.Error: storage_error,
    Exception: internal_error,
}
