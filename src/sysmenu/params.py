"""Query parameters as the API reads them: integers in a range, points in time."""

from __future__ import annotations

from starlette.requests import Request

from .errors import BadRequest
from .timefilter import parse_time


def int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def time_param(request: Request, name: str) -> float | None:
    """A point in time (see `timefilter`): ISO 8601, today, yesterday, 2h..."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None
