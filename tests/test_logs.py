"""sysmenu's log lines: an ISO timestamp, level, logger and message; JSON when asked."""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Iterator

import pytest

from sysmenu import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    access = logging.getLogger(logs.ACCESS_LOGGER)
    access_saved = (access.disabled, list(access.filters))
    out = io.StringIO()
    yield out
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    access.disabled, access.filters = access_saved[0], access_saved[1]


def access_line(client: str = "127.0.0.1:5555", path: str = "/api/version") -> None:
    """What uvicorn's access logger logs for one request."""
    logging.getLogger(logs.ACCESS_LOGGER).info('%s - "%s %s HTTP/%s" %d', client, "GET", path, "1.1", 200)


def test_text_lines_have_an_iso_timestamp_level_logger_and_message(stream: io.StringIO) -> None:
    logs.configure("info", "text", stream=stream)
    logging.getLogger("sysmenu.runner").info("run %s ended %s", 7, "ok")
    logging.getLogger("sysmenu.runner").debug("not shown at info")
    line = stream.getvalue().splitlines()
    assert len(line) == 1
    stamp, level, logger, message = line[0].split(" ", 3)
    moment = datetime.datetime.fromisoformat(stamp)
    assert moment.tzinfo is not None  # with its offset: unambiguous in any log collector
    assert abs((datetime.datetime.now(datetime.UTC) - moment).total_seconds()) < 60
    assert (level, logger, message) == ("INFO", "sysmenu.runner:", "run 7 ended ok")


def test_json_lines_are_one_object_each_with_the_traceback_inside(stream: io.StringIO) -> None:
    logs.configure("info", "json", stream=stream)
    log = logging.getLogger("sysmenu")
    log.warning("config ☕ changed\nsecond line")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # multi-line messages and tracebacks stay inside their line
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "WARNING" and first["logger"] == "sysmenu"
    assert first["message"] == "config ☕ changed\nsecond line"
    datetime.datetime.fromisoformat(first["time"])
    assert second["message"] == "it failed"
    assert "ValueError: boom" in second["exception"]


def test_access_log_is_off_by_default_and_on_when_asked(stream: io.StringIO) -> None:
    logs.configure("info", "text", stream=stream)
    access_line()
    assert stream.getvalue() == ""
    logs.configure("warning", "json", access_log=True, stream=stream)  # shown whatever the level
    access_line(path="/api/system/commands?apikey=SECRETKEY&x=1")
    entry = json.loads(stream.getvalue())
    assert entry["logger"] == "uvicorn.access"
    assert entry["status"] == 200 and entry["method"] == "GET"
    assert "SECRETKEY" not in stream.getvalue()
    assert entry["path"] == "/api/system/commands?apikey=…&x=1"


def test_configuring_twice_does_not_double_lines(stream: io.StringIO) -> None:
    logs.configure("info", "text", stream=stream)
    logs.configure("info", "text", stream=stream)
    logging.getLogger("uvicorn.error").info("Started server process")
    assert len(stream.getvalue().splitlines()) == 1
    assert " INFO uvicorn.error: Started server process" in stream.getvalue()
