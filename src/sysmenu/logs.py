"""sysmenu's log lines: one per event, on stderr, as text or as JSON.

Text (the default) is ``2026-11-25T21:04:05.123+00:00 INFO sysmenu.runner: message``;
JSON is one object per line with ``time``, ``level``, ``logger`` and ``message``
(and ``exception`` when there is one), for log shippers that read JSON. uvicorn's
own loggers go through the same handler, so its lines look the same. Access logs
(``uvicorn.access``, one line per request) are off unless asked for.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
import time
from typing import Any, TextIO

ACCESS_LOGGER = "uvicorn.access"
# Fields uvicorn's access log passes as arguments: kept as fields in JSON.
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
_KEY_IN_QUERY = re.compile(r"([?&]apikey=)[^&#]*", re.IGNORECASE)


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created).astimezone()
    return moment.isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE``; a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line (a traceback is a field, never extra lines)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        args = record.args
        if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == len(_ACCESS_FIELDS):
            entry.update(zip(_ACCESS_FIELDS, args, strict=True))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _HideKeys(logging.Filter):
    """API keys sent as ``?apikey=`` (OctoPrint's clients do) never reach the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == len(_ACCESS_FIELDS) and isinstance(args[2], str):
            record.args = (*args[:2], _KEY_IN_QUERY.sub(r"\1…", args[2]), *args[3:])
        return True


def configure(level: str, fmt: str = "text", access_log: bool = False, stream: TextIO | None = None) -> None:
    """Send every log line (sysmenu's and uvicorn's) to `stream` (stderr) in `fmt`.

    Replaces whatever handlers the root logger had, so calling it twice does not
    print each line twice.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger(ACCESS_LOGGER)
    access.disabled = not access_log
    access.setLevel(logging.INFO)  # asked for, access lines show whatever the level
    if not any(isinstance(f, _HideKeys) for f in access.filters):
        access.addFilter(_HideKeys())


class RateLimitedLog:
    """Logs a kind of problem at most once per `interval` seconds, counting the rest."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last = -interval
        self.suppressed = 0

    def warning(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        if self.suppressed:
            message += f" ({self.suppressed} more since the last report)"
        self.logger.warning(message, *args)
        self._last, self.suppressed = now, 0
