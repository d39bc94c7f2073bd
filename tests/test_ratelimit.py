"""API-key guessing is limited per address; other addresses keep working."""

from __future__ import annotations

import pytest

from sysmenu.ratelimit import FailureLimiter
from tests.conftest import Env

pytestmark = pytest.mark.anyio

URL = "/api/system/commands"


async def test_wrong_keys_from_one_address_get_429(env: Env) -> None:
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(10):
        r = await env.client.get(URL, headers=attacker | {"X-Api-Key": "guess"})
        assert r.status_code == 403
    r = await env.client.get(URL, headers=attacker | {"X-Api-Key": "guess"})
    assert r.status_code == 429
    assert "try again in" in r.json()["error"]
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # even the right key is refused from that address for now...
    r = await env.client.get(URL, headers=attacker | env.auth())
    assert r.status_code == 429
    # ...while other addresses are not locked out
    r = await env.client.get(URL, headers={"X-Forwarded-For": "198.51.100.1"} | env.auth())
    assert r.status_code == 200
    r = await env.client.get(URL, headers=env.auth())
    assert r.status_code == 200


async def test_no_key_is_not_counted(env: Env) -> None:
    for _ in range(20):
        assert (await env.client.get(URL)).status_code == 403
    assert (await env.client.get(URL, headers=env.auth())).status_code == 200


def test_limiter_window_and_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("sysmenu.ratelimit.time.monotonic", lambda: now[0])
    limiter = FailureLimiter(limit=3, window=10, max_addresses=5)
    for _ in range(3):
        limiter.fail("a")
    assert limiter.retry_after("a") == 10
    now[0] += 4
    assert limiter.retry_after("a") == 6
    now[0] += 6
    assert limiter.retry_after("a") == 0
    for i in range(50):
        limiter.fail(f"x{i}")
    assert len(limiter._failures) <= 5
