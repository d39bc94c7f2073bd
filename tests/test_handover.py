"""The failure limiters outlive the server process: a restart (or an idle exit) forgives nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from sysmenu import handover
from sysmenu.app import create_app
from sysmenu.config import parse
from sysmenu.ratelimit import FailureLimiter
from sysmenu.store import Store
from tests.conftest import CONFIG, with_test_host

pytestmark = pytest.mark.anyio

URL = "/api/system/commands"


async def statuses(store: Store, headers: dict[str, str], count: int) -> list[int]:
    """Start a server on `store`, send `count` requests, stop it (cleanly)."""
    app = create_app(with_test_host(parse(CONFIG, "test.yaml")), store)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.50", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://example.com") as client:
            return [(await client.get(URL, headers=headers)).status_code for _ in range(count)]


async def test_wrong_keys_still_count_after_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "sysmenu.db")
    store.accounts.add_user("admin", ["admins"])
    key = store.accounts.create_key("admin")
    assert await statuses(store, {"X-Api-Key": "guess"}, 6) == [403] * 6
    assert (tmp_path / handover.FILE).stat().st_mode & 0o777 == 0o600
    assert await statuses(store, {"X-Api-Key": "guess"}, 5) == [403] * 4 + [429]
    assert await statuses(store, {"X-Api-Key": "guess"}, 1) == [429]  # the address is still refused
    assert await statuses(store, {"X-Api-Key": key}, 1) == [200]  # a valid key never is
    store.close()


def test_snapshot_keeps_what_is_in_the_window_only(tmp_path: Path) -> None:
    limiter = FailureLimiter(limit=3, window=60)
    for _ in range(5):
        limiter.fail("198.51.100.1")
    limiter.fail("2001:db8::1")
    handover.save(tmp_path, {"apikey": limiter})
    saved = json.loads((tmp_path / handover.FILE).read_text())
    assert sorted(saved["apikey"]) == ["198.51.100.1", "2001:db8::/64"]
    assert len(saved["apikey"]["198.51.100.1"]) == 3  # never more than the limit
    stale = {"203.0.113.1": [time.time() - 3600], "203.0.113.2": [time.time() + 3600]}
    saved["apikey"].update(stale)  # an hour old, and from the future: neither counts
    (tmp_path / handover.FILE).write_text(json.dumps(saved))
    fresh = FailureLimiter(limit=3, window=60)
    handover.restore(tmp_path, {"apikey": fresh, "password": FailureLimiter()})
    assert fresh.retry_after("198.51.100.1") > 0
    assert fresh.retry_after("2001:db8::2") == 0  # one failure of three
    assert fresh.snapshot().keys() == {"198.51.100.1", "2001:db8::/64"}


def test_nothing_to_hand_over_writes_no_file_and_removes_an_old_one(tmp_path: Path) -> None:
    limiter = FailureLimiter(limit=3, window=60)
    handover.save(tmp_path, {"apikey": limiter, "password": FailureLimiter()})
    assert list(tmp_path.iterdir()) == []  # a clean stop without failures writes nothing
    limiter.fail("198.51.100.1")
    handover.save(tmp_path, {"apikey": limiter})
    assert (tmp_path / handover.FILE).exists()
    expired = FailureLimiter(limit=3, window=60)
    handover.save(tmp_path, {"apikey": expired})  # e.g. the failures went out of the window
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ["not json", "[]", '{"apikey": {"x": "nope"}}', '{"apikey": []}'])
def test_a_bad_file_is_ignored(tmp_path: Path, content: str) -> None:
    (tmp_path / handover.FILE).write_text(content)
    limiter = FailureLimiter()
    handover.restore(tmp_path, {"apikey": limiter})
    assert limiter.snapshot() == {}
