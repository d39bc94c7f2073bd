"""One exception tree for everything that becomes an HTTP error.

Each class carries its HTTP status; `app.py` turns any of them into a
response in exactly one place, with the body built by `error_body`.
"""

from __future__ import annotations


def error_body(message: str) -> dict[str, str]:
    """The one error body shape of every API error: ``{"error": message}``."""
    return {"error": message}


class SysmenuError(Exception):
    """Base of all errors that map to an HTTP status."""

    status_code = 500
    details: dict[str, object] | None = None  # more members of the error body, beside "error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class BadRequest(SysmenuError):
    status_code = 400


class Forbidden(SysmenuError):
    status_code = 403


class NotFound(SysmenuError):
    status_code = 404


class MethodNotAllowed(SysmenuError):
    status_code = 405


class Conflict(SysmenuError):
    status_code = 409


class Unprocessable(SysmenuError):
    status_code = 422


class PayloadTooLarge(SysmenuError):
    status_code = 413


class UnsupportedMediaType(SysmenuError):
    status_code = 415


class TooManyRequests(SysmenuError):
    status_code = 429


class ServiceUnavailable(SysmenuError):
    """Too busy right now (too many password checks waiting); try again shortly."""

    status_code = 503


class StorageUnavailable(SysmenuError):
    """The database cannot be written (read-only, disk full): nothing is run unrecorded."""

    status_code = 503


class Stopping(SysmenuError):
    """The server is stopping: a request that has not started its run gets this."""

    status_code = 503


class CommandFailed(SysmenuError):
    """A synchronous command ended unsuccessfully (documented 500)."""

    status_code = 500


class ConfigError(Exception):
    """The configuration file is unusable; the message names key, line and value."""


class StoreError(Exception):
    """A store operation that cannot be done (unknown user, duplicate name...)."""
