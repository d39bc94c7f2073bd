"""Pieces of the MQTT link that need no broker: the rate-limited log, request payloads, the outbox."""

from __future__ import annotations

import logging

import pytest

from sysmenu import logs
from sysmenu import mqtt_topics as topics
from sysmenu.config import parse
from sysmenu.logs import RateLimitedLog
from sysmenu.mqtt import MqttLink
from sysmenu.mqtt_outbox import Outgoing
from sysmenu.state import State
from sysmenu.store import Store

pytestmark = pytest.mark.anyio


def test_malformed_messages_are_logged_at_most_once_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    limited = RateLimitedLog(logging.getLogger("test.limited"), interval=60)
    with caplog.at_level(logging.WARNING, logger="test.limited"):
        for _ in range(5):
            limited.warning("bad message on %s", "t")
        now[0] += 61
        limited.warning("bad message on %s", "t")
    assert [r.getMessage() for r in caplog.records] == [
        "bad message on t",
        "bad message on t (4 more since the last report)",
    ]


@pytest.mark.parametrize(
    ("payload", "valid"),
    [(b"", True), (b"PRESS", True), (b" {} ", True), (b'{"a": 1}', True), (b"[1]", False), (b"{", False)],
)
def test_request_payloads(payload: bytes, valid: bool) -> None:
    assert topics.valid_request(payload) is valid


async def test_the_outbox_keeps_the_newest_state_and_a_bounded_number(tmp_path: object) -> None:
    config = parse("sysmenu:\n  mqtt:\n    host: 127.0.0.1\n    buffer: 3\n")
    store = Store(f"{tmp_path}/db")
    link = MqttLink(State(config, store), config.sysmenu.mqtt)  # type: ignore[arg-type]
    link.outbox.put(Outgoing("s/a", b"1", retain=True))
    link.outbox.put(Outgoing("e/a", b"start"))
    link.outbox.put(Outgoing("s/a", b"2", retain=True))  # replaces the first state
    assert [o.payload for o in link.outbox] == [b"start", b"2"]
    link.outbox.put(Outgoing("e/a", b"end"))
    link.outbox.put(Outgoing("e/b", b"more"))  # over the bound: the oldest goes
    assert [o.payload for o in link.outbox] == [b"2", b"end", b"more"] and link.outbox.dropped == 1
    store.close()
