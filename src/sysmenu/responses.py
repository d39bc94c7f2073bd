"""Response helpers shared by every view and middleware, and the one place where
exceptions become responses: `error_response`."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping

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


def json_response(data: object, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False).encode()
    headers = API_HEADERS | dict(headers) if headers else API_HEADERS
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def error_response(exc: BaseException) -> Response:
    """The answer to `exc`, in the API's one error shape (``{"error": ...}``), never a
    traceback. Used by the app's handler table and by the middlewares alike."""
    if isinstance(exc, SysmenuError):
        return json_response(error_body(exc.message) | (exc.details or {}), exc.status_code, exc.headers)
    if isinstance(exc, HTTPException):
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return json_response(error_body(str(exc.detail)), exc.status_code, exc.headers)
    if isinstance(exc, ClientDisconnect):
        # The client went away mid-body (or was cut off as too slow): nobody reads this.
        return json_response(error_body("Client disconnected"), 400)
    if isinstance(exc, sqlite3.Error):
        # A locked (past the busy timeout), read-only or full database: only this request fails.
        return json_response(error_body(f"The database cannot be used right now: {exc}"), 503)
    return json_response(error_body("Internal server error"), 500)


async def _handle(request: Request, exc: Exception) -> Response:
    where = f"{request.method} {request.url.path}"
    if isinstance(exc, ClientDisconnect):
        log.debug("client left during %s", where)
    elif isinstance(exc, sqlite3.Error):
        log.error("database error on %s: %s", where, exc)
    elif not isinstance(exc, SysmenuError | HTTPException):
        log.exception("unhandled error on %s", where)
    return error_response(exc)


# Starlette looks a handler up along the exception's classes; every entry is the same one.
EXCEPTION_HANDLERS = {
    cls: _handle for cls in (SysmenuError, HTTPException, ClientDisconnect, sqlite3.Error, Exception)
}
